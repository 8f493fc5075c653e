package testutil

import (
	"testing/synctest"
	"time"
)

// Advance moves a synctest bubble's fake clock forward by d and returns
// once every goroutine in the bubble has reacted and blocked again. Call it
// only inside synctest.Test: there a Sleep waits for no real time, it is
// how the fake clock is moved.
func Advance(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}
