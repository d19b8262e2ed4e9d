# The integration's metadata for HashiCorp's Packer integrations pages,
# written by hand. README.md and components/ next to it are generated from
# ../docs (go generate ./plugin/...). The integration tooling reads
# .web-docs/ at the root of the plugin's release repository,
# github.com/zkaas/packer-plugin-zkaas, whose root this plugin/ directory is.
integration {
  name        = "zkaas"
  description = "Applies roles to Packer builds; builds the zkaas stateless ZooKeeper images."
  identifier  = "packer/zkaas/zkaas"
  component {
    type = "provisioner"
    name = "zkaas"
    slug = "zkaas"
  }
  docs {
    process_docs    = true
    readme_location = "./README.md"
    external_url    = "https://github.com/zkaas/zkaas"
  }
}
