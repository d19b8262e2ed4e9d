# Every variable of the zkaas image, once. The two images (see
# sources.pkr.hcl) share the provisioning variables; the AWS and the local
# build host variables are ignored by the other source. An empty default
# that means "per image" is resolved in build.pkr.hcl, where each per-image
# value says why it differs.

# Provisioning: both images.

variable "arch" {
  type        = string
  default     = "arm64"
  description = "CPU architecture of the image: arm64 (Graviton) or amd64. Picks the default firstboot_binary and, on AWS, the base image and instance type."
  validation {
    condition     = contains(["arm64", "amd64"], var.arch)
    error_message = "The arch must be arm64 or amd64."
  }
}

variable "firstboot_binary" {
  type        = string
  default     = ""
  description = "zkaas-firstboot built for var.arch; empty for dist/zkaas-firstboot-<arch> in the repository, which `go tool mage dist:firstboot` builds for both architectures."
}

variable "ensemble_config" {
  type        = string
  description = "The ensemble config baked in as /etc/zkaas/ensemble.yaml (validated before the build starts)."
}

variable "java_version" {
  type    = string
  default = "17"
  validation {
    condition     = contains(["17", "21"], var.java_version)
    error_message = "The java_version must be 17 or 21 (Debian 12 packages 17 only)."
  }
}

variable "zookeeper_source" {
  type        = string
  default     = ""
  description = "tarball (the Apache release, pinned by sha512) or distro (the distribution's 3.8); empty for the image's default (build.pkr.hcl says which and why)."
  validation {
    condition     = contains(["", "tarball", "distro"], var.zookeeper_source)
    error_message = "The zookeeper_source must be tarball, distro or empty for the image's default."
  }
}

variable "zookeeper_version" {
  type        = string
  default     = ""
  description = "Apache ZooKeeper release for zookeeper_source = tarball; empty for the role's pinned default. Set zookeeper_sha512 with it."
  validation {
    condition     = var.zookeeper_version == "" || can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.zookeeper_version))
    error_message = "The zookeeper_version must look like 3.9.3."
  }
}

variable "zookeeper_sha512" {
  type        = string
  default     = ""
  description = "sha512 of apache-zookeeper-<version>-bin.tar.gz."
  validation {
    condition     = var.zookeeper_sha512 == "" || can(regex("^[0-9a-f]{128}$", var.zookeeper_sha512))
    error_message = "The zookeeper_sha512 must be 128 lower-case hex digits."
  }
}

# Plain http is accepted: the download is checked against the sha512 pin
# (zookeeper_sha512 or the role's) before it is unpacked, so TLS adds no
# integrity, and a mirror inside a private network (the local acceptance
# test serves one inside the bake's namespace) often has no certificate.
variable "zookeeper_mirror" {
  type        = string
  default     = ""
  description = "Base URL of the release tarballs; empty for archive.apache.org."
  validation {
    condition     = var.zookeeper_mirror == "" || can(regex("^https?://", var.zookeeper_mirror))
    error_message = "The zookeeper_mirror must be an http or https URL."
  }
}

variable "manifest" {
  type        = string
  default     = ""
  description = "Where the provisioner writes the manifest of role-managed files; empty for the image's default (build.pkr.hcl)."
}

variable "transcript" {
  type        = string
  default     = ""
  description = "Directory for a transcript of every remote command and upload; empty for none."
}

# The AWS image: source.amazon-ebs.aws.

variable "region" {
  type        = string
  default     = ""
  description = "AWS region to build the AMI in; empty for the AWS SDK's (AWS_REGION, AWS_DEFAULT_REGION, the profile's region). `go tool mage bake:aws` always sets it."
  validation {
    condition     = var.region == "" || can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "The region must be an AWS region name such as eu-west-1."
  }
}

variable "base_os" {
  type        = string
  default     = "debian-12"
  description = "Base image: debian-12 or ubuntu-24.04. The local build host is always Debian 12."
  validation {
    condition     = contains(["debian-12", "ubuntu-24.04"], var.base_os)
    error_message = "The base_os must be debian-12 or ubuntu-24.04."
  }
}

variable "instance_type" {
  type        = string
  default     = ""
  description = "Build instance type; empty for t4g.small (arm64) or t3.small (amd64)."
}

variable "subnet_id" {
  type        = string
  default     = ""
  description = "Subnet for the build instance; empty for the default VPC. It needs a route to the Debian/Ubuntu mirrors and to the ZooKeeper mirror."
}

variable "kms_key_id" {
  type        = string
  default     = ""
  description = "KMS key for the encrypted root volume and AMI snapshot; empty for the account's default EBS key."
}

variable "root_volume_size" {
  type    = number
  default = 8
  validation {
    condition     = var.root_volume_size >= 8 && var.root_volume_size <= 64
    error_message = "The root_volume_size must be between 8 and 64 GiB (data lives on the node's own EBS volume)."
  }
}

variable "ami_name_prefix" {
  type    = string
  default = "zkaas-zookeeper"
  validation {
    condition     = can(regex("^[A-Za-z0-9()./_-]{3,80}$", var.ami_name_prefix))
    error_message = "The ami_name_prefix must be 3-80 characters of letters, digits and ( ) . / _ -."
  }
}

variable "tags" {
  type        = map(string)
  default     = {}
  description = "Extra tags for the AMI, its snapshot and the build instance."
}

# The local image: source.null.local, the build host localbake starts (a
# Debian 12 chroot running sshd in its own network namespace).

variable "ssh_host" {
  type        = string
  default     = ""
  description = "Address of the local build host's sshd (required for the local image)."
}

variable "ssh_port" {
  type    = number
  default = 22
}

variable "ssh_username" {
  type    = string
  default = "root"
}

variable "ssh_private_key_file" {
  type        = string
  default     = ""
  description = "Private key the local build host accepts (a fresh one per run; required for the local image)."
}
