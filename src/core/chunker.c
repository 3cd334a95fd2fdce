/* Content-defined chunking: gear rolling hash with FastCDC normalized
 * chunking (Xia et al., "FastCDC", USENIX ATC 2016 and IEEE TPDS 2020).
 *
 * Cut rule, where L is the length of the current chunk including the byte
 * just hashed and hash = (hash << 1) + gear[byte]:
 *
 *   L <= min - 64        not hashed (see GEAR_WINDOW)
 *   min - 64 < L < min   hashed, never cut
 *   min <= L < avg       cut if (hash & mask_s) == 0  (log2(avg) + 2 bits)
 *   avg <= L < max       cut if (hash & mask_l) == 0  (log2(avg) - 2 bits)
 *   L == max             cut
 *
 * The gear table, the masks and this rule decide every chunk boundary, and
 * chunk ids are stored and exchanged between peers: changing any of them
 * changes the identity of all content. They must never change; the
 * known-answer test in tests/test_chunker.c guards them. */
#include <assert.h>
#include <errno.h>

#include "bdr/chunker.h"
#include "bdr/error.h"

/* Each byte shifts the hash left by one, so after 64 bytes a byte's
 * contribution is gone: the hash at any position depends only on the last
 * 64 bytes. Cut tests start at L = min >= 256, so hashing the first
 * min - 64 bytes of a chunk would be wasted work; skipping them gives the
 * same cuts as hashing everything, for any split of the input. */
#define GEAR_WINDOW 64u

/* The first 256 outputs of splitmix64 (x += 0x9E3779B97F4A7C15; z = x;
 * z = (z ^ z >> 30) * 0xBF58476D1CE4E5B9; z = (z ^ z >> 27) *
 * 0x94D049BB133111EB; z ^ z >> 31) from x = 0x6264722d67656172 ("bdr-gear").
 * Part of the on-disk and wire identity: NEVER CHANGE THESE VALUES. */
static const uint64_t gear[256] = {
	0xe5b23f653132baa1ull, 0x7786bf265f4bc7d2ull, 0xaa0a468d09a4dae2ull,
	0x39dad5aa62e1fbd7ull, 0x839a362e7009a0a3ull, 0x1194d05b64620015ull,
	0xa5b4431e0a821a99ull, 0x74ad62a557874d64ull, 0x6616e9c674045ad9ull,
	0x861848f48a7e5ae9ull, 0xbcf30013386043e4ull, 0x8cc100b26d8ccab7ull,
	0x03e015ddb2007b56ull, 0xeadbf5e98ce5b4bbull, 0x404555e643e05b56ull,
	0x3151b54052c5aee6ull, 0x5aedfeadfb848893ull, 0xa5ce9ea59d689778ull,
	0x1ff7080c9894bd2aull, 0x428363005cb86f81ull, 0xb3e8f5dd9185eefdull,
	0x5d6302ad752d986aull, 0xd135b0a4c45b5d6cull, 0x1a0ca415146a8f5cull,
	0xe3c6cc2b2c619977ull, 0x51032462a97c4acfull, 0xf731037978627146ull,
	0xa4b76abe73b1cd14ull, 0xacec88f830eb6045ull, 0xdc8ed4a30f65fadbull,
	0x354e009c4ae67e39ull, 0xef80f01968278688ull, 0x55686e5996305862ull,
	0x8e2f4f5f671c6ef8ull, 0x34c0374f8a300ca0ull, 0x71cc7c81f4de5645ull,
	0xe418c0eaeadf5e1cull, 0xc5b3706b8e73621eull, 0xb88fcc954eedafe9ull,
	0x9ca6beb654831f75ull, 0x109dba9d03154c42ull, 0x504ff93f1a219557ull,
	0x87d086993d0eb090ull, 0xfcd593a382320eb5ull, 0x82fc3f4540647660ull,
	0xa34e68d92dbf7733ull, 0xa03bfad327f8a8dcull, 0xf49e5889e4df6a7aull,
	0xd00f6f0f5113b0c4ull, 0x758060022a4c95d0ull, 0x3162bcd5354f52a3ull,
	0xabee4062ca704ff9ull, 0x01c081582f00176aull, 0x5b30c1aac649ca69ull,
	0x01af0bf0bce00360ull, 0x23ccec23db6c9903ull, 0x43ff390ba7e0d223ull,
	0x78cdf0bce69ae0c9ull, 0xcdf6946590e06d24ull, 0x5100564efdb83572ull,
	0x88ddcd60a63a815full, 0x0afdf528db0c9e7cull, 0xad304a9f3192b292ull,
	0x61cd62697d177817ull, 0xe8f617ae92e61e93ull, 0x627ac290cddece3bull,
	0x21d4f489f8dccb8dull, 0x093b1b75c72b47f7ull, 0x5b4076f4331d3570ull,
	0x220d3857123d3379ull, 0x6fede35b83b5eb04ull, 0x3b7ffba81b332d6cull,
	0x80cd37c3d57a642aull, 0x90b73cde76124648ull, 0xe82cbabdac858304ull,
	0xab7eebbad1aa8c5aull, 0x481cfc8f8da6e96dull, 0x9f21e1e6d9689286ull,
	0x9fe7df72980dbacdull, 0xbe7e17f679cc2bc1ull, 0x8ad5d8fb10701b65ull,
	0xf73b34985a4904bdull, 0x99ae708d8352f1fdull, 0x28433ab980cce971ull,
	0x79feaf667c867ef6ull, 0x24f286b5610ea8dcull, 0x1562659192666171ull,
	0xc33f94ae058f71a5ull, 0x7ae5881bab5d3681ull, 0x1085e31a977945e1ull,
	0x4b06e364c21613d3ull, 0x3addc5b6786a2642ull, 0x59a16c2bd55e8f02ull,
	0xd2370d1465c83527ull, 0x448af6f00543609full, 0xfc9482072cec0326ull,
	0xd97c7626ac22b3efull, 0x0e8310f4368c9ca0ull, 0x40aeb8f260ceb0a9ull,
	0xccc8df3de1e78df2ull, 0x9ee9b8a23f587a34ull, 0xc2acfcf8906b8adaull,
	0xda73cb83a89171e7ull, 0x313cfc4cb82e2d70ull, 0xf7fbdcb1b200197eull,
	0xbc3d8dccf196ee9full, 0xb73d16fa50aab7bfull, 0x094011f061d41b9full,
	0x7ca3ef5b8e8893abull, 0x006dd704836a081eull, 0x3eb9f6792e96b86full,
	0x43b405e30ada35a1ull, 0xb2aaf4bf6be4d6a6ull, 0x22f3df639ed27a3eull,
	0x4c56920339c1e836ull, 0xcff2ac629a0c4868ull, 0x07184338e1e7d7e0ull,
	0x9a8d3c1ebcc2689bull, 0xaa59583ce8bbf4a0ull, 0xe266f6f126f51d5full,
	0x248db021b4b0018aull, 0x25c2d84a18895300ull, 0xa0b38923b5da215eull,
	0x4bc51d139c6fbd35ull, 0x39fa9ecbb7047db3ull, 0x52a1c890a3765d53ull,
	0x50d4d0edac3b2224ull, 0xec03fcef150796d2ull, 0x2166a9b5cb7b1c63ull,
	0xe2f92a4bc41b945dull, 0x9685fa18334c5542ull, 0xe5be15e05616c8c9ull,
	0x61bad48942258d6eull, 0x0323df74084e44d2ull, 0xd46da174baa98b43ull,
	0x2c8666db06087f90ull, 0x258d086d35c8cfe1ull, 0x1c7aef003759fe7eull,
	0x82cbc2ab0bf63d66ull, 0x5435adc5e4f2c2c1ull, 0x1d7e5f33ea5041d9ull,
	0x3286b88dab7fabcbull, 0xb51b85f360008183ull, 0xc5720fb9d51fbc8full,
	0xc85aa5231ce62262ull, 0xf91365469dbe9363ull, 0x196b1c7a97353d6bull,
	0x1b7c4766cd116928ull, 0x908eec5e7d1aa76bull, 0xbc5720aacf75c25bull,
	0xd3e5cdbbb69f3af0ull, 0x25344b26eaedc13cull, 0x26a1bb24feac2316ull,
	0x64105646b70d3ef7ull, 0xff9e5454de2dc956ull, 0x8a86a157ab3fdd3dull,
	0xdeb2534643b5c1f2ull, 0x9067ee0e7a612df0ull, 0x756562d3a4d93af8ull,
	0xacee82b259f2b1f1ull, 0x8788fcfe0fd01a21ull, 0xb98755ca5682cb54ull,
	0x2fe2c2e74c4c8067ull, 0x2498d5ee1d952992ull, 0x99289bf1b9629202ull,
	0x67ca1928fe46dfefull, 0x810b4fbceb0a96f9ull, 0x158ebb4beae4bfb6ull,
	0x039b86cae4f930f8ull, 0xdf052fd365c13642ull, 0x899f966e8eb7c3b1ull,
	0x8ad14e7c8d971bd9ull, 0xada3a188af5c9805ull, 0x8e772e1d2f7a8664ull,
	0xc7f6621464f439e6ull, 0xcefccf0efdee9751ull, 0xae14a033d7c03066ull,
	0x05990d0f7ad365abull, 0x70db8b2e065be8e2ull, 0xb9470968c7ece121ull,
	0xe9a43346178accf4ull, 0xc76ac87a35dbda18ull, 0x5a0b5ddb7644a73aull,
	0x75b49d8297f3fbabull, 0xf7e1f9c8e013120cull, 0x08cdf7d4b9f2db01ull,
	0x27eeca7e1548d5beull, 0xc5fe2769cf77b5aeull, 0x6a8fc48c7bccfbc7ull,
	0xe58bf2d44744de3cull, 0x9134098ba21e2aa9ull, 0x4c8da0aa85ce84cfull,
	0xf9158ac1fdfb119bull, 0x169cdfcf8460a630ull, 0x0723a3bb741fa3bfull,
	0x6d242a8a80223d96ull, 0x913a25257a072e85ull, 0x0f2841955abc8cb6ull,
	0x27ed024893d1011bull, 0x767cbb68abbd3058ull, 0xf284a4d10ec4b8e9ull,
	0x01e8c54fd6bc3894ull, 0xae5111e96a4f501bull, 0x3cbaf8e788b6ee06ull,
	0x387e8703d07ab22bull, 0xf921e4557b4ec4eeull, 0x18f89f24ce9a70dcull,
	0x63f34a7875e52a94ull, 0x06d47f950a35615full, 0xbd70451ae3944891ull,
	0x77e2fc35685d28daull, 0x9d2d4f3314ffec33ull, 0x425c6e327657b657ull,
	0x90ad4fa6777e142aull, 0x49c8ef971b8ae13bull, 0x39826fcb2913d552ull,
	0x1f33fdb24ca9eb12ull, 0x2e4682a92780039cull, 0xe1173081eeee5368ull,
	0x8b99aa52ccc2e60aull, 0x7b570c778c8093c5ull, 0xdc34cfb427273ee6ull,
	0x93dcdd0810318db9ull, 0x4689fb41c73ec250ull, 0xcc8781e3746a1c79ull,
	0x3095857573006a7full, 0x1fd7fbaeb74e32f8ull, 0xbaddfd391ca06550ull,
	0xda8a773b8fd04102ull, 0xb67f3bd99cae1b51ull, 0x0a23eaa3fbc9a142ull,
	0x221790ba9c3b92d0ull, 0xc2658af3cfaed009ull, 0xc868e791670c3b46ull,
	0x826cbad51ad36252ull, 0xe9f918d0fdb157c3ull, 0xb7198ebd3f8ac1cdull,
	0xe7fcc29d0011f4c1ull, 0xd02a19920c4bf975ull, 0xc75ef317c2679d11ull,
	0x696bf8c9e9bb7acaull, 0xf88c3e9d92630de0ull, 0x0f1cc006407de769ull,
	0x2077d4a28252c5a0ull, 0xe39c4194584cf007ull, 0x23f5909c540ad001ull,
	0x0e8830a4d043fab4ull, 0x341be0f390096550ull, 0xbc37df7512d355f1ull,
	0xcba2c9a562af72bfull, 0x0c7af8d7a29d8fcfull, 0xfd1d93d067dedd78ull,
	0xcc95635e82284b79ull, 0x029bbf5d7b6fd43dull, 0x57c5d11d6628e9efull,
	0x45c1215ac0d8d829ull,
};

/* n one-bits spread evenly over hash bits 63 down to 16, the way FastCDC
 * spreads its mask bits: bit k of the hash depends only on the last k + 1
 * bytes, and low bits sum few table entries, so contiguous low bits would
 * look at a window of only n bytes. Bit 63 makes the window the full 64
 * bytes. Part of the chunk identity: NEVER CHANGE. */
static uint64_t spread_mask(unsigned n)
{
	uint64_t m = 0;

	for (unsigned i = 0; i < n; i++)
		m |= 1ull << (63 - i * 48 / n);
	return m;
}

void bdr_chunker_params_default(struct bdr_chunker_params *p, uint32_t avg_size)
{
	p->min_size = avg_size / 4;
	p->avg_size = avg_size;
	/* Saturate so params_check names max_size rather than a wrapped value. */
	p->max_size = avg_size > UINT32_MAX / 8 ? UINT32_MAX : avg_size * 8;
}

int bdr_chunker_params_check(const struct bdr_chunker_params *p, struct bdr_diag *d)
{
	if (p->avg_size == 0 || (p->avg_size & (p->avg_size - 1)))
		return bdr_diag_set(d, -EINVAL, "avg_size %u is not a power of two", p->avg_size);
	if (p->min_size < BDR_CHUNK_MIN_LIMIT)
		return bdr_diag_set(d, -BDR_ELIMIT, "min_size %u is below %u", p->min_size,
				    BDR_CHUNK_MIN_LIMIT);
	if (p->max_size > BDR_CHUNK_MAX_LIMIT)
		return bdr_diag_set(d, -BDR_ELIMIT, "max_size %u is above %u", p->max_size,
				    BDR_CHUNK_MAX_LIMIT);
	if (p->min_size >= p->avg_size)
		return bdr_diag_set(d, -EINVAL, "min_size %u is not below avg_size %u", p->min_size,
				    p->avg_size);
	if (p->avg_size >= p->max_size)
		return bdr_diag_set(d, -EINVAL, "max_size %u is not above avg_size %u", p->max_size,
				    p->avg_size);
	return 0;
}

/* p must pass bdr_chunker_params_check(). */
void bdr_chunker_init(struct bdr_chunker *c, const struct bdr_chunker_params *p)
{
	unsigned bits = (unsigned)__builtin_ctz(p->avg_size);

	assert(bdr_chunker_params_check(p, NULL) == 0);
	c->p = *p;
	c->mask_s = spread_mask(bits + 2);
	c->mask_l = spread_mask(bits - 2);
	bdr_chunker_reset(c);
}

void bdr_chunker_reset(struct bdr_chunker *c)
{
	c->hash = 0;
	c->len = 0;
}

static inline size_t min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* Bytes to take from n available before c->len reaches end. */
static inline size_t phase_len(const struct bdr_chunker *c, size_t n, uint32_t end)
{
	return c->len < end ? min_sz(end - c->len, n) : 0;
}

/* Hashes up to n bytes while L < min: no cut is possible there. */
static size_t warm(struct bdr_chunker *c, const uint8_t *p, size_t n)
{
	size_t todo = phase_len(c, n, c->p.min_size - 1);
	uint64_t h = c->hash;

	for (size_t i = 0; i < todo; i++)
		h = (h << 1) + gear[p[i]];
	c->hash = h;
	c->len += (uint32_t)todo;
	return todo;
}

/* Advances over up to todo bytes, two at a time, while neither can cut;
 * returns the bytes taken (a pair holding a cut is left to the byte loop).
 * The plain loop is latency bound: h = 2h + g is a two-cycle chain per
 * byte (shift and add, or a scaled LEA). Here both hashes of a pair derive from h directly, h1 = 2h + s1 and
 * h2 = 4h + s2 with s2 = 2 s1 + g2 off the chain, so the chain is one shift
 * and one add per two bytes. The empty asm stops the compiler from
 * reassociating s2 back into the chain (about 10% on Zen 4); wider steps
 * measured slower, being bound by uops rather than latency. */
static inline size_t skim2(uint64_t *hp, const uint8_t *p, size_t todo, uint64_t mask)
{
	uint64_t h = *hp;
	size_t i = 0;

	for (; i + 2 <= todo; i += 2) {
		uint64_t s1 = gear[p[i]];
		uint64_t s2 = (s1 << 1) + gear[p[i + 1]];
		__asm__("" : "+r"(s2));
		if (!(((h << 1) + s1) & mask) || !(((h << 2) + s2) & mask))
			break;
		h = (h << 2) + s2;
	}
	*hp = h;
	return i;
}

/* Hashes up to n bytes while c->len < end, stopping after the first byte
 * that leaves (hash & mask) == 0; *cut tells which. */
static inline size_t find_cut(struct bdr_chunker *c, const uint8_t *p, size_t n, uint32_t end,
			  uint64_t mask, bool *cut)
{
	size_t todo = phase_len(c, n, end), i;
	uint64_t h = c->hash;

	i = skim2(&h, p, todo, mask);
	while (i < todo) {
		h = (h << 1) + gear[p[i++]];
		if (!(h & mask)) {
			*cut = true;
			break;
		}
	}
	c->hash = h;
	c->len += (uint32_t)i;
	return i;
}

size_t bdr_chunker_next(struct bdr_chunker *c, const uint8_t *buf, size_t len, bool *cut)
{
	const struct bdr_chunker_params *p = &c->p;
	size_t i = phase_len(c, len, p->min_size - GEAR_WINDOW);

	*cut = false;
	c->len += (uint32_t)i;
	i += warm(c, buf + i, len - i);
	i += find_cut(c, buf + i, len - i, p->avg_size - 1, c->mask_s, cut);
	if (!*cut)
		i += find_cut(c, buf + i, len - i, p->max_size, c->mask_l, cut);
	if (c->len == p->max_size)
		*cut = true;
	if (*cut)
		bdr_chunker_reset(c);
	return i;
}
