# A Consul server as the Learn guides write it (/etc/consul.d/server.hcl).
datacenter       = "dc1"
data_dir         = "/opt/consul"
node_name        = "consul-server-1"
server           = true
bootstrap_expect = 3
bind_addr        = "10.0.1.10"
client_addr      = "0.0.0.0"
encrypt          = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="
retry_join       = ["10.0.1.11", "10.0.1.12", "provider=aws tag_key=consul tag_value=server"]
log_level        = "INFO"

ui_config {
  enabled = true
}

connect {
  enabled = true
}

ports {
  grpc     = 8502
  grpc_tls = 8503
}

performance {
  raft_multiplier = 1
}

telemetry {
  prometheus_retention_time = "60s"
  disable_hostname          = true
}

autopilot {
  cleanup_dead_servers      = true
  last_contact_threshold    = "200ms"
  max_trailing_logs         = 250
  server_stabilization_time = "10s"
}

leave_on_terminate   = true
disable_update_check = true
