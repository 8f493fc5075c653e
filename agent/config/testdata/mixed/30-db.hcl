service {
  name = "db"
  port = 5432
  check {
    tcp      = "localhost:5432"
    interval = "10s"
  }
}
