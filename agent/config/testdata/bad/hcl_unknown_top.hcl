# datacentre is British for a typo.
datacentre = "dc1"
