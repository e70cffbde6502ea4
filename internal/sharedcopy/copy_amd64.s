//go:build amd64 && !race

#include "textflag.h"

// func repMovsb(dst, src []byte)
TEXT ·repMovsb(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ src_base+24(FP), SI
	REP; MOVSB
	RET
