datacenter = "dc1"
data_dir   = "/opt/consul"

dns_config {
  node_ttl     = "10s"
  only_pasing  = true
}
