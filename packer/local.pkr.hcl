# The local bake: the same roles as the AMI, applied over SSH to a local
# build host (a Debian 12 chroot running sshd in its own network namespace;
# `go tool mage bake:local` sets one up and exports the result as an image).
# Nothing but Debian's mirror is reachable from it, so ZooKeeper comes from
# the distribution package unless zookeeper_source says otherwise.

packer {
  required_version = ">= 1.11.0"
  required_plugins {
    zkaas = {
      source  = "github.com/zkaas/zkaas"
      version = ">= 0.1.0"
    }
  }
}

variable "ssh_host" {
  type        = string
  description = "Address of the build host's sshd."
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
  description = "Private key the build host accepts (a fresh one per run)."
}

variable "firstboot_binary" {
  type        = string
  description = "zkaas-firstboot built for the build host's architecture."
}

variable "ensemble_config" {
  type        = string
  description = "Ensemble config baked in as /etc/zkaas/ensemble.yaml."
}

variable "java_version" {
  type    = string
  default = "17"
  validation {
    condition     = contains(["17", "21"], var.java_version)
    error_message = "The java_version must be 17 or 21 (Debian 12 has 17 only)."
  }
}

variable "zookeeper_source" {
  type    = string
  default = "distro"
  validation {
    condition     = contains(["distro", "tarball"], var.zookeeper_source)
    error_message = "The zookeeper_source must be distro or tarball."
  }
}

variable "zookeeper_version" {
  type        = string
  default     = ""
  description = "Release for zookeeper_source = tarball; empty for the role's pinned default."
}

variable "zookeeper_sha512" {
  type        = string
  default     = ""
  description = "sha512 of the release tarball; required with zookeeper_version."
  validation {
    condition     = var.zookeeper_sha512 == "" || can(regex("^[0-9a-f]{128}$", var.zookeeper_sha512))
    error_message = "The zookeeper_sha512 must be 128 lower-case hex digits."
  }
}

variable "zookeeper_mirror" {
  type        = string
  default     = ""
  description = "Base URL of the release tarballs; empty for the role's default."
  validation {
    condition     = var.zookeeper_mirror == "" || can(regex("^https?://", var.zookeeper_mirror))
    error_message = "The zookeeper_mirror must be an http or https URL."
  }
}

variable "manifest" {
  type        = string
  default     = ""
  description = "Where to write the manifest of role-managed files; empty for none."
}

variable "transcript" {
  type        = string
  default     = ""
  description = "Directory for a transcript of every remote command and upload; empty for none."
}

locals {
  # Empty optional settings are left out so the roles' defaults apply.
  optional = {
    "zookeeper.version" = var.zookeeper_version
    "zookeeper.sha512"  = var.zookeeper_sha512
    "zookeeper.mirror"  = var.zookeeper_mirror
  }
}

source "null" "local" {
  communicator         = "ssh"
  ssh_host             = var.ssh_host
  ssh_port             = var.ssh_port
  ssh_username         = var.ssh_username
  ssh_private_key_file = var.ssh_private_key_file
  ssh_timeout          = "2m"
}

build {
  sources = ["source.null.local"]

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
    manifest   = var.manifest
    transcript = var.transcript
  }
}
