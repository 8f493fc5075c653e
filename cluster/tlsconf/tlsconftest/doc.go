// Package tlsconftest writes throw-away CAs and agent certificates into a
// test's temporary directory, through the same code `cairn tls` uses, so
// TLS tests of the RPC port and of whole agents share one fixture. Test
// code only.
package tlsconftest
