package bench

import (
	"reflect"
	"testing"
)

// osu_reduce_scatter's receive counts: the remainder goes to the first ranks, and fewer
// elements than ranks give one each to the first ones.
func TestReduceScatterCounts(t *testing.T) {
	for _, c := range []struct {
		name      string
		n, ranks  int
		want      []int
		wantEqual bool
	}{
		{"even", 8, 4, []int{2, 2, 2, 2}, true},
		{"remainder", 10, 4, []int{3, 3, 2, 2}, false},
		{"fewer than ranks", 2, 8, []int{1, 1, 0, 0, 0, 0, 0, 0}, false},
		{"one rank", 5, 1, []int{5}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, equal := reduceScatterCounts(c.n, c.ranks)
			if !reflect.DeepEqual(got, c.want) || equal != c.wantEqual {
				t.Errorf("reduceScatterCounts(%d, %d) = %v, %v; want %v, %v", c.n, c.ranks, got, equal, c.want, c.wantEqual)
			}
			sum := 0
			for _, v := range got {
				sum += v
			}
			if sum != c.n {
				t.Errorf("counts %v sum to %d, want %d", got, sum, c.n)
			}
		})
	}
}
