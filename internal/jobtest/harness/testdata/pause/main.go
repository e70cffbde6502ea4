// Command pause waits a minute, or until it is killed: a process for harness's tests to leave
// behind. With -exit it exits at once.
package main

import (
	"os"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-exit" {
		return
	}
	time.Sleep(time.Minute)
}
