datacenter = "dc1"
data_dir   = "/opt/consul"
server     = true
retry_join = ["10.0.0.1"]
telemetry {
  disable_hostname = true
}
service {
  name = "web"
  port = 80
}
