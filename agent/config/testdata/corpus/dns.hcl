# DNS tuning as /etc/consul.d/dns.hcl usually carries it.
recursors = ["8.8.8.8", "8.8.4.4:53"]

dns_config {
  allow_stale      = true
  max_stale        = "87600h"
  node_ttl         = "10s"
  enable_truncate  = true
  only_passing     = true
  udp_answer_limit = 3
  recursor_timeout = "2s"
  use_cache        = true
  cache_max_age    = "5s"
  service_ttl {
    "*"   = "5s"
    "web" = "30s"
  }
  soa {
    min_ttl = 0
  }
}

domain     = "consul"
alt_domain = "example.internal"
