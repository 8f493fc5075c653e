# Services with checks, one block per service as Consul's docs write them.
service {
  name = "web"
  id   = "web-1"
  port = 8080
  tags = ["primary", "v1"]
  meta {
    version = "1.4.2"
  }
  check {
    id       = "web-http"
    name     = "HTTP on 8080"
    http     = "http://localhost:8080/health"
    method   = "GET"
    interval = "10s"
    timeout  = "1s"
  }
  connect {
    sidecar_service {}
  }
}

service {
  name = "redis"
  port = 6379
  tags = ["cache"]
  checks = [
    {
      name     = "redis-tcp"
      tcp      = "localhost:6379"
      interval = "5s"
      timeout  = "1s"
      success_before_passing = 2
    },
    {
      name = "redis-ttl"
      ttl  = "30s"
    },
  ]
}

check {
  id       = "disk"
  name     = "Disk usage"
  args     = ["/usr/local/bin/check_disk", "-w", "80"]
  interval = "1m"
}

enable_local_script_checks = true
