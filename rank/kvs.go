package rank

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/gorun-hpc/gorun/internal/pmi"
)

// PMI values are limited (a line is at most 1024 bytes), so a long card is split across keys:
// key holds "parts:N" and key-0 … key-(N-1) hold the pieces, in order.
const (
	valueMax    = 800 // bytes of value per key, well under every launcher's limit
	partsPrefix = "parts:"
)

// putLong stores value under key, split if it is long.
func putLong(c *pmi.Client, key, value string) error {
	if len(value) <= valueMax && !strings.HasPrefix(value, partsPrefix) {
		return c.Put(key, value)
	}
	n := (len(value) + valueMax - 1) / valueMax
	for i := range n {
		if err := c.Put(fmt.Sprintf("%s-%d", key, i), value[i*valueMax:min((i+1)*valueMax, len(value))]); err != nil {
			return err
		}
	}
	return c.Put(key, partsPrefix+strconv.Itoa(n))
}

// getLong reads a value putLong stored.
func getLong(c *pmi.Client, key string) (string, error) {
	v, err := c.Get(key)
	if err != nil || !strings.HasPrefix(v, partsPrefix) {
		return v, err
	}
	n, err := strconv.Atoi(v[len(partsPrefix):])
	if err != nil || n < 1 || n > 1000 {
		return "", fmt.Errorf("%s: %q", key, v)
	}
	var b strings.Builder
	for i := range n {
		part, err := c.Get(fmt.Sprintf("%s-%d", key, i))
		if err != nil {
			return "", err
		}
		b.WriteString(part)
	}
	return b.String(), nil
}
