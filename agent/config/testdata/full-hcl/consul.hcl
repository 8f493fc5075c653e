# The HCL twin of ../full/consul.json: Load must produce the same Config.
server           = true
bootstrap_expect = 3
data_dir         = "/var/lib/cairn"
node_name        = "web-01"
node_id          = "adf4238a-882b-9ddc-4a9d-5b6758e4159e"
datacenter       = "EU-West"
bind_addr        = "10.0.0.5"
client_addr      = "0.0.0.0"
retry_join       = ["10.0.0.6", "10.0.0.7"]
retry_join_wan   = ["192.0.2.10"]
encrypt          = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="
recursors        = ["1.1.1.1", "9.9.9.9:5353", "2606:4700:4700::1111"]

ports {
  dns      = 53
  http     = 8500
  server   = 8300
  serf_lan = 8301
  serf_wan = -1
}

domain                     = "Cairn"
alt_domain                 = "consul.example.com"
log_level                  = "WARNING"
log_json                   = true
enable_local_script_checks = true
disable_remote_exec        = false
reconnect_timeout          = "24h"

node_meta {
  rack          = "r12"
  instance_type = "m5.large"
}

dns_config {
  allow_stale  = false
  max_stale    = "10s"
  node_ttl     = "30s"
  service_ttl {
    "*"   = "5s"
    "db*" = "1m"
    web   = "15s"
  }
  only_passing        = true
  enable_truncate     = true
  udp_answer_limit    = 5
  a_record_limit      = 4
  recursor_timeout    = "3s"
  disable_compression = true
  soa {
    refresh = 7200
    retry   = 300
    expire  = 172800
    min_ttl = 60
  }
}

cache {
  max_entries = 500
  max_stale   = "1h"
}

limits {
  http_max_conns_per_client = 50
  rpc_max_conns_per_client  = 0
  request_limits {
    mode       = "enforcing"
    read_rate  = 1000
    write_rate = 50.5
  }
}

service {
  id                  = "web-1"
  name                = "web"
  tags                = ["primary", "v2"]
  address             = "10.0.0.5"
  port                = 8080
  meta {
    version = "2.1"
  }
  weights {
    passing = 10
    warning = 1
  }
  enable_tag_override = true
  check {
    http            = "http://localhost:8080/health"
    method          = "GET"
    header {
      X-Probe = ["cairn"]
    }
    tls_skip_verify = true
    interval        = "10s"
    timeout         = "1s"
    deregister_critical_service_after = "90m"
  }
}

services = [
  {
    name   = "db"
    port   = 5432
    checks = [
      { tcp = "localhost:5432", interval = "5s" },
      {
        args     = ["/usr/local/bin/check_db", "--fast"]
        interval = "30s"
        status   = "passing"
      },
    ]
  },
]

check {
  id    = "mem"
  name  = "Memory"
  ttl   = "30s"
  notes = "pushed by cron"
}

checks = [
  {
    name       = "web-ttl"
    service_id = "web-1"
    ttl        = "1m"
  }
]
