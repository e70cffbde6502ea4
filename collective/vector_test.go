package collective

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// The irregular collectives against a sequential reference: 1-9 ranks, count patterns with
// zeros and with blocks on both sides of the table's thresholds, displacements packed and
// with gaps (which must stay untouched), every root, every algorithm (forced) and the table's
// choice. Each rank computes what it should hold from the inputs' formula, so a case needs no
// exchange beyond the call under test.

const vElem = 3 // bytes per element: odd, so a byte/element mix-up shows

// vPatterns returns the count patterns (in elements) for n ranks.
func vPatterns(n int) [][]int {
	pats := [][]int{make([]int, n)} // all zero
	irregular, oneBig, ones := make([]int, n), make([]int, n), make([]int, n)
	for i := range n {
		if i%3 != 1 {
			irregular[i] = i*5 + 1
		}
		if i == n/2 {
			oneBig[i] = 2000 // 6000 bytes: over the 4 KiB block threshold
		} else if i%2 == 0 {
			oneBig[i] = 7
		}
		ones[i] = 1
	}
	return append(pats, irregular, oneBig, ones)
}

// vData is element k of the block that rank src sends to rank dst in case seed.
func vData(src, dst, k, seed int) [vElem]byte {
	return [vElem]byte{byte(src*31 + k*7 + seed), byte(dst*17 + k + seed*3), byte(k >> 8)}
}

func vBlock(src, dst, count, seed int) []byte {
	b := make([]byte, 0, count*vElem)
	for k := range count {
		e := vData(src, dst, k, seed)
		b = append(b, e[:]...)
	}
	return b
}

// vLayout returns byte counts and displacements for counts (in elements), and the buffer
// size: packed in rank order, or (gaps) in reverse rank order with two elements between and
// around blocks.
func vLayout(counts []int, gaps bool) (cb, db []int, size int) {
	n := len(counts)
	cb, db = make([]int, n), make([]int, n)
	at := 0
	if gaps {
		at = 2 * vElem
	}
	for j := range n {
		i := j
		if gaps {
			i = n - 1 - j
		}
		cb[i], db[i] = counts[i]*vElem, at
		at += counts[i] * vElem
		if gaps {
			at += 2 * vElem
		}
	}
	return cb, db, at
}

func filled(size int) []byte { return bytes.Repeat([]byte{0xEE}, size) }

// checkGaps reports a byte outside every block that is not 0xEE.
func checkGaps(buf []byte, cb, db []int) error {
	in := make([]bool, len(buf))
	for i := range cb {
		for k := db[i]; k < db[i]+cb[i]; k++ {
			in[k] = true
		}
	}
	for k, b := range buf {
		if !in[k] && b != 0xEE {
			return fmt.Errorf("gap byte %d written", k)
		}
	}
	return nil
}

func vAlgos(coll Coll) []algorithm { return append([]algorithm{"auto"}, algosOf(coll)...) }

func TestGathervScatterv(t *testing.T) {
	for _, algo := range vAlgos(CollGatherv) {
		eg, es := forcedEngine(t, CollGatherv, algo), forcedEngine(t, CollScatterv, algo)
		for n := 1; n <= 9; n++ {
			t.Run(fmt.Sprintf("%v/n%d", algo, n), func(t *testing.T) {
				t.Parallel()
				runRanks(t, n, func(c Comm) error {
					me, seed := c.Rank(), 0
					for _, counts := range vPatterns(n) {
						for _, gaps := range []bool{false, true} {
							cb, db, size := vLayout(counts, gaps)
							for root := range n {
								seed++
								var recv []byte
								var rc, rd []int
								if me == root {
									recv, rc, rd = filled(size), cb, db
								}
								if err := eg.Gatherv(c, vBlock(me, root, counts[me], seed), recv, rc, rd, root); err != nil {
									return err
								}
								if me == root {
									for i := range n {
										if got := recv[db[i] : db[i]+cb[i]]; !bytes.Equal(got, vBlock(i, root, counts[i], seed)) {
											return fmt.Errorf("gatherv seed %d root %d: block %d wrong", seed, root, i)
										}
									}
									if err := checkGaps(recv, cb, db); err != nil {
										return fmt.Errorf("gatherv seed %d: %w", seed, err)
									}
								}
								var send []byte
								if me == root {
									send = filled(size)
									for i := range n {
										copy(send[db[i]:], vBlock(root, i, counts[i], seed))
									}
								}
								mine := filled(counts[me] * vElem)
								if err := es.Scatterv(c, send, mine, rc, rd, root); err != nil {
									return err
								}
								if !bytes.Equal(mine, vBlock(root, me, counts[me], seed)) {
									return fmt.Errorf("scatterv seed %d root %d: rank %d's block wrong", seed, root, me)
								}
							}
						}
					}
					return nil
				})
			})
		}
	}
}

// TestAllgatherv runs the point-to-point algorithms, and (shm) the node arena with 16-byte
// slots, so that blocks take several rounds.
func TestAllgatherv(t *testing.T) {
	for _, algo := range vAlgos(CollAllgatherv) {
		e := forcedEngine(t, CollAllgatherv, algo)
		for n := 1; n <= 9; n++ {
			t.Run(fmt.Sprintf("%v/n%d", algo, n), func(t *testing.T) {
				t.Parallel()
				wrap := func(c Comm) Comm { return c }
				if algo == algoShm {
					wrap = nodeWrap(make([]int, n), 16)
				}
				runRanks(t, n, func(c Comm) error {
					c = wrap(c)
					me, seed := c.Rank(), 0
					for _, counts := range vPatterns(n) {
						for _, gaps := range []bool{false, true} {
							seed++
							cb, db, size := vLayout(counts, gaps)
							recv := filled(size)
							if err := e.Allgatherv(c, vBlock(me, -1, counts[me], seed), recv, cb, db); err != nil {
								return err
							}
							for i := range n {
								if !bytes.Equal(recv[db[i]:db[i]+cb[i]], vBlock(i, -1, counts[i], seed)) {
									return fmt.Errorf("seed %d: rank %d: block %d wrong", seed, me, i)
								}
							}
							if err := checkGaps(recv, cb, db); err != nil {
								return fmt.Errorf("seed %d: %w", seed, err)
							}
						}
					}
					return nil
				})
			})
		}
	}
}

// a2aCount is how many elements rank i sends rank j in pattern p.
func a2aCount(p, i, j int) int {
	switch p {
	case 0:
		return 0
	case 1:
		return (i*3 + j*5) % 4 // zeros scattered
	case 2:
		if (i+j)%3 == 0 {
			return 0
		}
		return 3000 // 9000 bytes a block, so the average picks pairwise for some ranks
	}
	if i == 0 {
		return 20000 // rank 0 alone over the table's threshold: ranks choose differently
	}
	return j % 2
}

func TestAlltoallv(t *testing.T) {
	for _, algo := range vAlgos(CollAlltoallv) {
		e := forcedEngine(t, CollAlltoallv, algo)
		for n := 1; n <= 9; n++ {
			t.Run(fmt.Sprintf("%v/n%d", algo, n), func(t *testing.T) {
				t.Parallel()
				runRanks(t, n, func(c Comm) error {
					me, seed := c.Rank(), 0
					for p := range 4 {
						for _, gaps := range []bool{false, true} {
							seed++
							sc, rc := make([]int, n), make([]int, n)
							for j := range n {
								sc[j], rc[j] = a2aCount(p, me, j), a2aCount(p, j, me)
							}
							scb, sdb, ssize := vLayout(sc, gaps)
							rcb, rdb, rsize := vLayout(rc, !gaps)
							send := filled(ssize)
							for j := range n {
								copy(send[sdb[j]:], vBlock(me, j, sc[j], seed))
							}
							recv := filled(rsize)
							if err := e.Alltoallv(c, send, scb, sdb, recv, rcb, rdb); err != nil {
								return err
							}
							for i := range n {
								if !bytes.Equal(recv[rdb[i]:rdb[i]+rcb[i]], vBlock(i, me, rc[i], seed)) {
									return fmt.Errorf("pattern %d: rank %d: block from %d wrong", p, me, i)
								}
							}
							if err := checkGaps(recv, rcb, rdb); err != nil {
								return fmt.Errorf("pattern %d: %w", p, err)
							}
						}
					}
					return nil
				})
			})
		}
	}
}

// TestReduceScatterAndExscan compares ReduceScatter with irregular counts and Exscan with
// the reference fold in rank order, for every element type and op and the non-commutative
// concatenation (which shows any operand out of rank order); shm runs the node arena with
// 16-byte slots, so that a block spans several rounds and a round several blocks.
func TestReduceScatterAndExscan(t *testing.T) {
	cases := append(elemCases[:len(elemCases):len(elemCases)], concatElem)
	for _, algo := range vAlgos(CollReduceScatterV) {
		e := forcedEngine(t, CollReduceScatterV, algo)
		for n := 1; n <= 9; n++ {
			t.Run(fmt.Sprintf("%v/n%d", algo, n), func(t *testing.T) {
				t.Parallel()
				var steps []step
				seed := 0
				for _, ec := range cases {
					for _, op := range ec.ops {
						for _, counts := range vPatterns(n) {
							seed++
							steps = append(steps, reduceScatterVStep(e, ec, op, counts, seed))
						}
						seed++
						steps = append(steps, exscanStep(e, ec, op, 5, seed), exscanStep(e, ec, op, 0, seed))
					}
				}
				var wrap func(Comm) Comm
				if algo == algoShm {
					wrap = nodeWrap(make([]int, n), 16)
				}
				runStepsOn(t, n, wrap, steps)
			})
		}
	}
}

func reduceScatterVStep(e *Engine, ec elemCase, op Op, counts []int, seed int) step {
	n, all := len(counts), 0
	off := make([]int, n+1)
	for i, k := range counts {
		all += k
		off[i+1] = off[i] + k*ec.size
	}
	cb := make([]int, n)
	for i, k := range counts {
		cb[i] = k * ec.size
	}
	return step{
		name: fmt.Sprintf("reduce_scatterv/%s/%v/%v", ec.name, op, counts),
		run: func(c Comm) ([]byte, []byte, error) {
			r, err := ec.newReducer(op)
			if err != nil {
				return nil, nil, err
			}
			in := input(ec, all, c.Rank(), seed)
			out := garbage(cb[c.Rank()])
			return in, out, e.ReduceScatter(c, in, out, cb, r)
		},
		check: func(ins, outs [][]byte) error {
			for i := range n {
				want := refReduce(ec, op, ins, 0, n, func(b []byte) []byte { return b[off[i]:off[i+1]] })
				if err := sameBytes(outs[i], want, i); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func exscanStep(e *Engine, ec elemCase, op Op, count, seed int) step {
	return step{
		name: fmt.Sprintf("exscan/%s/%v/%d", ec.name, op, count),
		run: func(c Comm) ([]byte, []byte, error) {
			r, err := ec.newReducer(op)
			if err != nil {
				return nil, nil, err
			}
			in := input(ec, count, c.Rank(), seed)
			out := garbage(count * ec.size)
			if c.Rank()%2 == 1 { // in place on odd ranks
				out = append([]byte(nil), in...)
				err := e.Exscan(c, out, out, r)
				return in, out, err
			}
			return in, out, e.Exscan(c, in, out, r)
		},
		check: func(ins, outs [][]byte) error {
			if !bytes.Equal(outs[0], garbage(len(outs[0]))) && len(outs) > 1 {
				return fmt.Errorf("rank 0's recv was written")
			}
			for i := 1; i < len(ins); i++ {
				if err := sameBytes(outs[i], refReduce(ec, op, ins, 0, i, whole), i); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

// TestVerifyCounts: Verify's Hash must agree and its Balance sum to 0, else ErrMismatch on
// every rank; a Balance that cancels (each transfer added by its sender and subtracted by its
// receiver) passes.
func TestVerifyCounts(t *testing.T) {
	for n := 1; n <= 5; n++ {
		for _, tc := range []struct {
			name string
			sig  func(me int) Signature
			ok   bool
		}{
			{"agree", func(me int) Signature {
				// rank me sends (me+1)%n me elements; its receiver expects as many
				src := (me - 1 + n) % n
				return Signature{Coll: CollAlltoallv, Hash: 42, Balance: BlockHash(me, (me+1)%n, me) - BlockHash(src, me, src)}
			}, true},
			{"hash differs", func(me int) Signature { return Signature{Coll: CollAllgatherv, Hash: int64(me)} }, n == 1},
			{"balance off", func(me int) Signature {
				src := (me - 1 + n) % n
				return Signature{Coll: CollAlltoallv, Balance: BlockHash(me, (me+1)%n, me) - BlockHash(src, me, src+1)}
			}, false},
		} {
			t.Run(fmt.Sprintf("%s/n%d", tc.name, n), func(t *testing.T) {
				errs := runWorld(t, n, func(c Comm) error { return Verify(c, tc.sig(c.Rank()), nil) })
				for r, err := range errs {
					if tc.ok && err != nil || !tc.ok && !errors.Is(err, ErrMismatch) {
						t.Errorf("rank %d: %v (want ok: %v)", r, err, tc.ok)
					}
				}
			})
		}
	}
}
