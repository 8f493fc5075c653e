dns_config {
  node_ttl = "10s"
}
dns_config {
  only_passing = true
}
