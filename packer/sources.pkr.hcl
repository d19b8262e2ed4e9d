# The two images the one build (build.pkr.hcl) provisions alike.

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

  aws_tags = merge(var.tags, {
    "zkaas:component" = "zookeeper-ami"
    "zkaas:base-os"   = var.base_os
    "zkaas:zookeeper" = local.zookeeper_source.aws == "distro" ? "distro" : (var.zookeeper_version != "" ? var.zookeeper_version : "default")
  })
}

# The AMI: Debian 12 or Ubuntu 24.04 from its official image, provisioned on
# a build instance. Instances launched from it must require IMDSv2 (the AMI
# says so with imds_support = v2.0).
source "amazon-ebs" "aws" {
  region        = var.region != "" ? var.region : null
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

  tags          = merge(local.aws_tags, { "zkaas:source-ami" = "{{ .SourceAMI }}" })
  snapshot_tags = local.aws_tags
  run_tags      = merge(local.aws_tags, { Name = "zkaas-bake" })
}

# The local stand-in for the AMI: the same roles applied over SSH to the
# build host localbake starts (`go tool mage bake:local`), which exports the
# result as an image. The null builder makes nothing itself.
source "null" "local" {
  communicator         = "ssh"
  ssh_host             = var.ssh_host
  ssh_port             = var.ssh_port
  ssh_username         = var.ssh_username
  ssh_private_key_file = var.ssh_private_key_file
  ssh_timeout          = "2m"
}
