service {
  name = "web"
  port = 80
}

service {
  name = "api"
  port = 8080
  chek {
    ttl = "10s"
  }
}
