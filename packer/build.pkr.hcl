# The zkaas ZooKeeper image: a headless JRE, Apache ZooKeeper, zkaas-firstboot
# with its units and the ensemble config, and hardened defaults, applied by
# the zkaas provisioner to either source (sources.pkr.hcl). Run on the
# directory and pick the image with -only:
#
#   AWS (the AMI):
#     go tool mage dist:firstboot      # dist/zkaas-firstboot-{amd64,arm64}
#     packer build -only='zkaas.amazon-ebs.aws' -var region=eu-west-1 \
#       -var arch=arm64 -var ensemble_config=ensemble.yaml packer/
#   or all of it: ZKAAS_ENSEMBLE_CONFIG=ensemble.yaml go tool mage bake:aws
#
#   local (the stand-in, root): go tool mage bake:local, which runs
#     packer build -only='zkaas.null.local' -var ssh_host=... packer/
#
# Installing the plugins. `packer init packer/` installs the amazon plugin
# from its GitHub releases, and will install zkaas once it is released from
# a GitHub repository named packer-plugin-zkaas (Packer resolves
# github.com/zkaas/zkaas to github.com/zkaas/packer-plugin-zkaas). Until
# then it cannot find zkaas: build and install it from this repository with
# `go tool mage plugin:install`, or `packer plugins install --path
# <binary> github.com/zkaas/zkaas`.
#
# Packer checks required_plugins for the whole directory before -only
# applies, so the local image needs the amazon plugin installed too;
# localbake installs one built from the Go module proxy (cached in
# ~/.cache/zkaas) into the plugin path it uses.

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

locals {
  # Where the two images differ, keyed by source name, each with its reason.
  # A variable that is set overrides the image's value.
  image = {
    aws = {
      # The Apache release, pinned by version and sha512: what runs in
      # production, and the 3.9 line the distribution does not package.
      zookeeper_source = "tarball"
      # A record of the role-managed files, kept with packer-manifest.json.
      manifest = "zkaas-manifest-${var.base_os}-${var.arch}-${local.timestamp}.json"
    }
    local = {
      # The build host reaches nothing but Debian's mirror (through
      # localbake's proxy): the release tarball cannot be fetched on this
      # machine, so the distribution's package. The acceptance test covers
      # the tarball path with a release it serves inside the namespace.
      zookeeper_source = "distro"
      # localbake names the file (it exports the manifest with the image);
      # a bare run writes none into the working directory.
      manifest = ""
    }
  }
  zookeeper_source = { for name, i in local.image : name => var.zookeeper_source != "" ? var.zookeeper_source : i.zookeeper_source }
  manifest         = { for name, i in local.image : name => var.manifest != "" ? var.manifest : i.manifest }

  # The path `go tool mage dist:firstboot` builds, independent of the
  # directory Packer runs in.
  firstboot_binary = var.firstboot_binary != "" ? var.firstboot_binary : abspath("${path.root}/../dist/zkaas-firstboot-${var.arch}")

  # Empty optional settings are left out so the roles' defaults apply.
  optional = {
    "zookeeper.version" = var.zookeeper_version
    "zookeeper.sha512"  = var.zookeeper_sha512
    "zookeeper.mirror"  = var.zookeeper_mirror
  }
}

build {
  name    = "zkaas"
  sources = ["source.amazon-ebs.aws", "source.null.local"]

  # cloud-init rewrites apt sources and runs apt on an EC2 instance's first
  # boot: let it finish before the roles use apt (bounded: a hung cloud-init
  # fails the build instead of holding it). The local build host is a chroot
  # without cloud-init.
  provisioner "shell" {
    only    = ["amazon-ebs.aws"]
    inline  = ["cloud-init status --wait >/dev/null || true"]
    timeout = "10m"
  }

  provisioner "zkaas" {
    roles = ["java", "zookeeper", "firstboot", "hardening"]
    variables = merge(
      {
        binary             = local.firstboot_binary
        ensemble_config    = var.ensemble_config
        "java.version"     = var.java_version
        "zookeeper.source" = local.zookeeper_source[source.name]
      },
      { for k, v in local.optional : k => v if v != "" },
    )
    manifest   = local.manifest[source.name]
    transcript = var.transcript
  }

  # The AMI's id and region for whoever launches it; the local image is
  # described by the image.json localbake writes on export.
  post-processor "manifest" {
    only       = ["amazon-ebs.aws"]
    output     = "packer-manifest.json"
    strip_path = true
  }
}
