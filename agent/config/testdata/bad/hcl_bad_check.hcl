service {
  name = "web"
  check {
    http = "http://localhost/"
  }
}
