// Package testutil holds the one helper tests use to wait for something to
// happen: Eventually polls a condition until it holds or a deadline passes,
// so no test sleeps to order events. It imports nothing of Cairn's and is
// used only from _test.go files and test-support packages.
package testutil
