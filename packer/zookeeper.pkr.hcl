# The zkaas ZooKeeper AMI: Debian 12 or Ubuntu 24.04, a pinned and
# verified Apache ZooKeeper release, a headless JRE, zkaas-firstboot with its
# units and the ensemble config, and hardened defaults. Instances launched
# from it must require IMDSv2 (the AMI says so with imds_support = v2.0).
#
#   packer init packer/zookeeper.pkr.hcl
#   packer build -var region=eu-west-1 -var firstboot_binary=dist/zkaas-firstboot-arm64 \
#     -var ensemble_config=ensemble.yaml packer/zookeeper.pkr.hcl

packer {
  required_version = ">= 1.11.0"
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.3.0"
    }
    zkaas = {
      source  = "github.com/zkaas/zkaas"
      version = ">= 0.1.0"
    }
  }
}

variable "region" {
  type        = string
  description = "AWS region to build the AMI in."
  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "The region must be an AWS region name such as eu-west-1."
  }
}

variable "base_os" {
  type        = string
  default     = "debian-12"
  description = "Base image: debian-12 or ubuntu-24.04."
  validation {
    condition     = contains(["debian-12", "ubuntu-24.04"], var.base_os)
    error_message = "The base_os must be debian-12 or ubuntu-24.04."
  }
}

variable "arch" {
  type        = string
  default     = "arm64"
  description = "CPU architecture: arm64 (Graviton) or amd64. firstboot_binary must match."
  validation {
    condition     = contains(["arm64", "amd64"], var.arch)
    error_message = "The arch must be arm64 or amd64."
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

variable "firstboot_binary" {
  type        = string
  description = "zkaas-firstboot built for var.arch (CGO_ENABLED=0 GOARCH=<arch> go build ./firstboot/cmd/zkaas-firstboot)."
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
  type    = string
  default = "tarball"
  validation {
    condition     = contains(["tarball", "distro"], var.zookeeper_source)
    error_message = "The zookeeper_source must be tarball (Apache release) or distro (the distribution's 3.8)."
  }
}

variable "zookeeper_version" {
  type        = string
  default     = ""
  description = "Apache ZooKeeper release; empty for the role's pinned default. Set zookeeper_sha512 with it."
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

variable "zookeeper_mirror" {
  type        = string
  default     = ""
  description = "Base URL of the release tarballs; empty for archive.apache.org."
  validation {
    condition     = var.zookeeper_mirror == "" || can(regex("^https://", var.zookeeper_mirror))
    error_message = "The zookeeper_mirror must be an https URL."
  }
}

locals {
  timestamp = formatdate("YYYYMMDD-hhmmss", timestamp())

  # Official images: Debian's cloud team and Canonical.
  bases = {
    "debian-12" = {
      owners       = ["136693071363"]
      name         = "debian-12-${var.arch}-*"
      ssh_username = "admin"
      root_device  = "/dev/xvda"
    }
    "ubuntu-24.04" = {
      owners       = ["099720109477"]
      name         = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-${var.arch}-server-*"
      ssh_username = "ubuntu"
      root_device  = "/dev/sda1"
    }
  }
  base          = local.bases[var.base_os]
  instance_type = var.instance_type != "" ? var.instance_type : (var.arch == "arm64" ? "t4g.small" : "t3.small")

  optional = {
    "zookeeper.version" = var.zookeeper_version
    "zookeeper.sha512"  = var.zookeeper_sha512
    "zookeeper.mirror"  = var.zookeeper_mirror
  }

  tags = merge(var.tags, {
    "zkaas:component" = "zookeeper-ami"
    "zkaas:base-os"   = var.base_os
    "zkaas:zookeeper" = var.zookeeper_source == "distro" ? "distro" : (var.zookeeper_version != "" ? var.zookeeper_version : "default")
  })
}

source "amazon-ebs" "zookeeper" {
  region        = var.region
  instance_type = local.instance_type
  subnet_id     = var.subnet_id != "" ? var.subnet_id : null

  source_ami_filter {
    owners      = local.base.owners
    most_recent = true
    filters = {
      name                = local.base.name
      architecture        = var.arch == "arm64" ? "arm64" : "x86_64"
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
  }

  ssh_username            = local.base.ssh_username
  temporary_key_pair_type = "ed25519"

  ami_name        = "${var.ami_name_prefix}-${var.base_os}-${var.arch}-${local.timestamp}"
  ami_description = "zkaas ZooKeeper node (${var.base_os}, ${var.arch}), built ${local.timestamp}"

  # The build instance and every instance launched from the AMI use IMDSv2
  # only: zkaas-firstboot's identity comes from the metadata service.
  imds_support = "v2.0"
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  encrypt_boot = true
  kms_key_id   = var.kms_key_id != "" ? var.kms_key_id : null
  launch_block_device_mappings {
    device_name           = local.base.root_device
    volume_size           = var.root_volume_size
    volume_type           = "gp3"
    encrypted             = true
    kms_key_id            = var.kms_key_id != "" ? var.kms_key_id : null
    delete_on_termination = true
  }

  tags          = merge(local.tags, { "zkaas:source-ami" = "{{ .SourceAMI }}" })
  snapshot_tags = local.tags
  run_tags      = merge(local.tags, { Name = "zkaas-bake" })
}

build {
  sources = ["source.amazon-ebs.zookeeper"]

  # cloud-init rewrites apt sources and runs apt on first boot: let it
  # finish before the roles use apt (bounded: a hung cloud-init fails the
  # build instead of holding it).
  provisioner "shell" {
    inline  = ["cloud-init status --wait >/dev/null || true"]
    timeout = "10m"
  }

  provisioner "zkaas" {
    roles = ["java", "zookeeper", "firstboot", "hardening"]
    variables = merge(
      {
        binary             = var.firstboot_binary
        ensemble_config    = var.ensemble_config
        "java.version"     = var.java_version
        "zookeeper.source" = var.zookeeper_source
      },
      { for k, v in local.optional : k => v if v != "" },
    )
    manifest = "zkaas-manifest-${var.base_os}-${var.arch}-${local.timestamp}.json"
  }

  post-processor "manifest" {
    output     = "packer-manifest.json"
    strip_path = true
  }
}
