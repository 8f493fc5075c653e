datacenter = "dc1"
ports {
  dns = 53
