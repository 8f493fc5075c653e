server = true
data_dir = "/tmp/x"
bootstrap_expect = "three"
