package collective

import (
	"fmt"
)

// Step builders: one collective call through an Engine, with its reference check. seed varies
// the inputs from step to step, so a message delivered to the wrong step shows.

func allreduceStep(e *Engine, ec elemCase, op Op, count, seed int, inPlace bool) step {
	return step{
		name: fmt.Sprintf("allreduce/%s/%v/count%d/inplace=%v", ec.name, op, count, inPlace),
		run: func(c Comm) ([]byte, []byte, error) {
			r, err := ec.newReducer(op)
			if err != nil {
				return nil, nil, err
			}
			in := input(ec, count, c.Rank(), seed)
			if inPlace {
				out := append(alloc(len(in))[:0], in...)
				return in, out, e.Allreduce(c, out, out, r)
			}
			out := garbage(len(in))
			return in, out, e.Allreduce(c, in, out, r)
		},
		check: func(ins, outs [][]byte) error {
			want := refReduce(ec, op, ins, 0, len(ins), whole)
			for r := range outs {
				if err := sameBytes(outs[r], want, r); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func reduceStep(e *Engine, ec elemCase, op Op, count, root, seed int) step {
	return step{
		name: fmt.Sprintf("reduce/%s/%v/count%d/root%d", ec.name, op, count, root),
		run: func(c Comm) ([]byte, []byte, error) {
			r, err := ec.newReducer(op)
			if err != nil {
				return nil, nil, err
			}
			in := input(ec, count, c.Rank(), seed)
			var out []byte
			if c.Rank() == root {
				out = garbage(len(in))
			}
			return in, out, e.Reduce(c, in, out, r, root)
		},
		check: func(ins, outs [][]byte) error {
			return sameBytes(outs[root], refReduce(ec, op, ins, 0, len(ins), whole), root)
		},
	}
}

func scanStep(e *Engine, ec elemCase, op Op, count, seed int) step {
	return step{
		name: fmt.Sprintf("scan/%s/%v/count%d", ec.name, op, count),
		run: func(c Comm) ([]byte, []byte, error) {
			r, err := ec.newReducer(op)
			if err != nil {
				return nil, nil, err
			}
			in := input(ec, count, c.Rank(), seed)
			out := garbage(len(in))
			return in, out, e.Scan(c, in, out, r)
		},
		check: func(ins, outs [][]byte) error {
			for r := range outs {
				if err := sameBytes(outs[r], refReduce(ec, op, ins, 0, r+1, whole), r); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func reduceScatterStep(e *Engine, ec elemCase, op Op, count, seed int) step {
	return step{
		name: fmt.Sprintf("reduce_scatter/%s/%v/count%d", ec.name, op, count),
		run: func(c Comm) ([]byte, []byte, error) {
			r, err := ec.newReducer(op)
			if err != nil {
				return nil, nil, err
			}
			in := input(ec, c.Size()*count, c.Rank(), seed)
			out := garbage(count * ec.size)
			return in, out, e.ReduceScatterBlock(c, in, out, r)
		},
		check: func(ins, outs [][]byte) error {
			b := count * ec.size
			for r := range outs {
				block := func(x []byte) []byte { return x[r*b : (r+1)*b] }
				if err := sameBytes(outs[r], refReduce(ec, op, ins, 0, len(ins), block), r); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func bcastStep(e *Engine, ec elemCase, count, root, seed int) step {
	return step{
		name: fmt.Sprintf("bcast/%s/count%d/root%d", ec.name, count, root),
		run: func(c Comm) ([]byte, []byte, error) {
			if c.Rank() != root {
				buf := garbage(count * ec.size)
				return nil, buf, e.Bcast(c, buf, root)
			}
			buf := input(ec, count, root, seed)
			in := append(alloc(len(buf))[:0], buf...)
			return in, buf, e.Bcast(c, buf, root)
		},
		check: func(ins, outs [][]byte) error {
			for r := range outs {
				if err := sameBytes(outs[r], ins[root], r); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func gatherStep(e *Engine, ec elemCase, count, root, seed int) step {
	return step{
		name: fmt.Sprintf("gather/%s/count%d/root%d", ec.name, count, root),
		run: func(c Comm) ([]byte, []byte, error) {
			in := input(ec, count, c.Rank(), seed)
			var out []byte
			if c.Rank() == root {
				out = garbage(c.Size() * len(in))
			}
			return in, out, e.Gather(c, in, out, root)
		},
		check: func(ins, outs [][]byte) error {
			var want []byte
			for _, in := range ins {
				want = append(want, in...)
			}
			return sameBytes(outs[root], want, root)
		},
	}
}

func scatterStep(e *Engine, ec elemCase, count, root, seed int) step {
	return step{
		name: fmt.Sprintf("scatter/%s/count%d/root%d", ec.name, count, root),
		run: func(c Comm) ([]byte, []byte, error) {
			var in []byte
			if c.Rank() == root {
				in = input(ec, c.Size()*count, root, seed)
			}
			out := garbage(count * ec.size)
			return in, out, e.Scatter(c, in, out, root)
		},
		check: func(ins, outs [][]byte) error {
			b := count * ec.size
			for r := range outs {
				if err := sameBytes(outs[r], ins[root][r*b:(r+1)*b], r); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func allgatherStep(e *Engine, ec elemCase, count, seed int) step {
	return step{
		name: fmt.Sprintf("allgather/%s/count%d", ec.name, count),
		run: func(c Comm) ([]byte, []byte, error) {
			in := input(ec, count, c.Rank(), seed)
			out := garbage(c.Size() * len(in))
			return in, out, e.Allgather(c, in, out)
		},
		check: func(ins, outs [][]byte) error {
			var want []byte
			for _, in := range ins {
				want = append(want, in...)
			}
			for r := range outs {
				if err := sameBytes(outs[r], want, r); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func alltoallStep(e *Engine, ec elemCase, count, seed int) step {
	return step{
		name: fmt.Sprintf("alltoall/%s/count%d", ec.name, count),
		run: func(c Comm) ([]byte, []byte, error) {
			in := input(ec, c.Size()*count, c.Rank(), seed)
			out := garbage(len(in))
			return in, out, e.Alltoall(c, in, out)
		},
		check: func(ins, outs [][]byte) error {
			b := count * ec.size
			for r := range outs {
				var want []byte
				for src := range ins {
					want = append(want, ins[src][r*b:(r+1)*b]...)
				}
				if err := sameBytes(outs[r], want, r); err != nil {
					return err
				}
			}
			return nil
		},
	}
}
