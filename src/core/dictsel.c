/* Dictionary selection for codec 2 (include/bdr/dictsel.h).
 *
 * Sampler: h = (h << 2) + table[byte] over 64 bits, so after 32 bytes a
 * byte's contribution is shifted out and h depends on exactly the last
 * BDR_DICTSEL_ANCHOR_LEN bytes; the same bytes give the same h in the old
 * file and in a chunk sampled from its own start. A position is a
 * candidate when the top log2(gap) bits of h are zero (the top bits
 * depend on all 32 bytes; the low ones only on the last few). A candidate
 * becomes an anchor unless it is closer than gap / 4 to the previous
 * anchor (which bounds the index) or has that anchor's key (a run of one
 * byte, or a short repeating pattern, gives the same h at every period).
 *
 * The key is 32 bits of a mix of h. Keys collide by chance (an index of
 * N anchors answers a random lookup falsely with probability N / 2^32);
 * such a match is one stray vote. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bdr/chunker.h"
#include "bdr/dictsel.h"

#define MINGAP_DIV 4u
#define READ_BUF (256u * 1024)
/* Match weights: 1 / occurrences of the key, in integer units. */
#define WEIGHT_UNIT 840 /* divisible by 1..8 */
_Static_assert(BDR_DICTSEL_MAX_OCC <= 8, "WEIGHT_UNIT divides by 1..MAX_OCC");

/* splitmix64 from x = 0x6264722d64696374 ("bdr-dict"); not part of any
 * format: only the sender samples. */
static const uint64_t table[256] = {
	0xfba54b442b686647ull, 0x21d39adf1e026766ull, 0x26ee286313fb8eedull,
	0xd5bafc2837449a67ull, 0xa49fb456f5cf214aull, 0xe5cabd36aa753249ull,
	0x9715bce9d361f12aull, 0x66fe6c5864a524edull, 0xcd366f7efd5751abull,
	0xa91a8465ab691299ull, 0xc145c37afa2256fdull, 0xa3b730daa560a07full,
	0xeaad7c53e01393fcull, 0xeaf2d34a82d381f7ull, 0x9ef6d99d3cc9864cull,
	0x5705e8fa9150d086ull, 0x737752f4709f1c05ull, 0x8270e816769877e0ull,
	0xe8d8cc097ebb46c7ull, 0x2727493cc5ef113cull, 0xd2a9db43d310bc7bull,
	0xde8e3be15395e230ull, 0x431f87b208490bf2ull, 0xb3576478d40187f1ull,
	0x6f15e76ad94f619full, 0x015074d10d94a6e5ull, 0x134e197e9b331856ull,
	0x9e260bfb0524ed52ull, 0xeee9a950d1cf7ff2ull, 0x7ef1612bac1a3d76ull,
	0x1bd8689752c2167full, 0xaa94b3763fcc7115ull, 0x918b1a631c6e1dfcull,
	0x0b4f2fd302c6150eull, 0x2e65b39c76f00b89ull, 0xd5faa6b316716605ull,
	0xd851f3abcba68ee6ull, 0x5bdf67ab31b3ae4full, 0xdb15a460cce567caull,
	0x1342e445fe3b977bull, 0x89ca44fec7039369ull, 0x3716d630c3a56e90ull,
	0xdd6a3150bdc347f3ull, 0xc105051d8291cd31ull, 0xfb46e0b8b88645eeull,
	0x6658ad32ca4a6263ull, 0x434f8704f0c50399ull, 0xfa55d7fd617859edull,
	0xf6f5413c6f3b2bc6ull, 0x5fe35f96069d1bb8ull, 0x2b61ffea311dee5full,
	0x0cbc43983cc92653ull, 0xbab0e02b66a4eb30ull, 0xe68d46934d116aa2ull,
	0x6ed527cb2661864full, 0x51bb15942307e190ull, 0xb728a72db43fff3full,
	0x39667c1938fa8ae7ull, 0x6faeae5b57336dd8ull, 0xf2b286319cb635daull,
	0x019adf7e78f2bdbaull, 0x784689b8fe6f646bull, 0xced4ef1f3f65e6dfull,
	0x583a298fca42aab2ull, 0xfc8faa685bfb210dull, 0x1ea1e940c10a2a6cull,
	0x140992b1e2de537dull, 0x2e8b26fafc39fb3full, 0xc566a983f8cfa7cdull,
	0xae358e95978bad55ull, 0x52b2c510e687729full, 0x1563ab08c544d58dull,
	0x7b901e1e00f59131ull, 0xc6cf796b71ec1dadull, 0x73f8c93f7b4be74aull,
	0x2515b21e343709e1ull, 0xfa080d9df28cd108ull, 0x620fee2961586335ull,
	0xeb5e36a2815af5a0ull, 0x368535db2da535e6ull, 0x24b5c9e054c56374ull,
	0x67e0a0bc02b48f8full, 0xe1e7aab0dc94cf81ull, 0x7230edbc897c52f7ull,
	0xd50d3acc5ce5fac3ull, 0x9fbfa24ae1e37276ull, 0x06634388b2e78240ull,
	0xcbc28ec7a9277ee8ull, 0x0bb2417569174e8dull, 0x557dc36d303d139bull,
	0x762548cc383c47d7ull, 0xe77c3dd3607c5f56ull, 0xec24dc62c12f2b50ull,
	0x0bc37632e7361148ull, 0xe7fba9068c697c47ull, 0x0d93d7acc4af9ddeull,
	0xee1d2210def2c768ull, 0x56f0ea32c4e1cf9dull, 0xbf127454f31bcf04ull,
	0xce79f28fe8ec0048ull, 0xf212718e3d1782a6ull, 0x06730c5e6198e8e1ull,
	0x5351f6b0b68d9938ull, 0x190aee031950e0b7ull, 0x3b3a46d2f6ecd120ull,
	0x7d63cad8b1f6c429ull, 0x2341594aa3be2704ull, 0x560e75a64bc8c508ull,
	0xe1872d393fb55cceull, 0x26053c5ea5abd6faull, 0x49d953d4f62d9cdcull,
	0x296a2de557a209e7ull, 0x27ea66d2c7f5c17dull, 0x8d90f5af86d88fe8ull,
	0xefc7e3ee02382327ull, 0xfd4c456213a56ef3ull, 0x1d253ad61710e784ull,
	0xa357411415761c1aull, 0xe6ff675d822f54e8ull, 0x25f6a67afc033421ull,
	0xfcc6688f859212edull, 0xf1e75cd1922e80f4ull, 0xec2fbe670da8e6b2ull,
	0x87551006130220deull, 0xf6e49610641acd8aull, 0xfb2f2e178a27cd10ull,
	0xcd44a92566f6e163ull, 0x40dd3dcdf9e64589ull, 0x5aac3ad81748f821ull,
	0x031f4b874b71bddaull, 0xde7bcbb86dfbd441ull, 0x2871765ce971d58eull,
	0xbd52ddd6ae24b6b6ull, 0x03f38a8ce22a960eull, 0xfbc71e4ce96effd1ull,
	0xc5f0f5d4b60a7b1bull, 0xfa645c87eb0cc9ccull, 0xed42eb5349a45262ull,
	0x1cba99d72a523801ull, 0x03acb68026fa8bf0ull, 0x2f80a23e9f6bf38aull,
	0x9ab87d67563d6a35ull, 0xa9000878502babc4ull, 0x07f14155942ea8c0ull,
	0xe88e9a3b02fab773ull, 0x9ddd27caf32a31d8ull, 0xc70e6b4929bb6e67ull,
	0xb21f7d7ab4b6691full, 0x42bd2147893c6f97ull, 0x54dc19848fa4eabbull,
	0x7bfff9f2c331f348ull, 0xceb0e026e6d95e02ull, 0x9c2975dbf6e7e486ull,
	0xabc873bceb70541cull, 0xe2f409a0e0d0d022ull, 0xd04eb3b2e16d5c67ull,
	0x34d2a07eb4b0e012ull, 0x157b4f738dcc4251ull, 0x2d1eaa7d815f59f9ull,
	0x37d00558078639e8ull, 0xa538bee96ab4370cull, 0x57b539e44e670bb9ull,
	0xed591e6170de6950ull, 0x38955354d90ceb0aull, 0xe3e29d82b05e66bdull,
	0x9f05a8dc58baedbdull, 0xfe51977ba137682cull, 0xadd1a30714362390ull,
	0x59a7841d98880672ull, 0x46c3d222e9067622ull, 0x4881065e572433cdull,
	0x4fb42b54d61a374cull, 0xf464be10595d5058ull, 0xc6c8bff51b10d580ull,
	0xbd25271cb50f9bbaull, 0x11af526a24e669ccull, 0x500fbcca85e4cf06ull,
	0x048835c98609b811ull, 0x39c2168f2c61d977ull, 0x20fbdef10a4bbf4dull,
	0xbf553bf6bacd35f7ull, 0xf3c6a7373ce3e796ull, 0x1aa75f21003d3e52ull,
	0x242f63dedfe2d687ull, 0x8a86045ec377761full, 0x68a24f2bcd5ba76aull,
	0xb4a48974b5c0dd20ull, 0x7362c21a60851f34ull, 0x6dc2a215b2c83201ull,
	0x1d2e8c9ca6620f86ull, 0xe5ffc620faada2daull, 0x5a6b531e3b42868aull,
	0xa65628b6c390d850ull, 0xf91f3b069b415dabull, 0x1a01ff874e9b9f0cull,
	0xfb6a8a04e642de25ull, 0xb71edc41118a7026ull, 0xa62fd42e8a8095c6ull,
	0xae7db4f8ab3ae39eull, 0x40c2196519da7424ull, 0xc46474fdb0f83523ull,
	0x633a2d1049a7699dull, 0xa853670b706f2404ull, 0xcc5c226ed857dd4full,
	0xdd29e287b976cdb2ull, 0xd3a92cf66bfa367eull, 0xbcecb65e68d15724ull,
	0x61ef51fd8070ac0cull, 0x1057be215c435874ull, 0x0f3107e28c878bb4ull,
	0x0c488a3f85485358ull, 0xeb568463a11dc401ull, 0x78fd5e3ad0f53fdaull,
	0xf5c0fa9e629adbd8ull, 0x438f330a28675f9cull, 0x3a7bd51ddaee41afull,
	0xe94dacda5b60eb51ull, 0x238e69a376dafdd7ull, 0x335cbcdc0e233297ull,
	0x28b5286b92295d04ull, 0x38a8da64d9c004d2ull, 0x7046e322aa3b7d93ull,
	0x727abce3e789e2eaull, 0xa0595847c60f636dull, 0xe8e64f2a316850e5ull,
	0x82cd1ef00f9c17a6ull, 0x280ed38f7f2bca3aull, 0xe28496ddd28c0c4bull,
	0xb715d324f44b96e5ull, 0x3d1de79872b15f1eull, 0xeea0995625faa154ull,
	0xa75ccd4282b43a64ull, 0x769326b0015ad70eull, 0x7cd91fadfe981769ull,
	0xcd96e2e15b1f9010ull, 0x6865edcc7e4501cfull, 0xe699ccf002d1900eull,
	0x24af96ebb4cf93fbull, 0x065b42f9ab499907ull, 0x020a5f034737c35aull,
	0x1343f439cd016bf7ull, 0x951caf458e72f702ull, 0x2d07ca8c79a0965dull,
	0x43c86f9fbe8dd2faull, 0xfe789888ce7d8706ull, 0x75d8e337da3c96f2ull,
	0x32bebce367bffa7cull, 0xe3f54d5058174577ull, 0xecffbe6dfd9b6c9dull,
	0x92b95e008465845dull, 0x27f9bc632135247eull, 0x90716531e9c82a0aull,
	0x45623dfae40e3dd1ull, 0xbf321f3739059facull, 0xc67864e421269c80ull,
	0x99cb2691525dd024ull,
};

/* ---- sampler ---- */

static int gap_ok(uint32_t gap)
{
	return gap >= BDR_DICTSEL_GAP_MIN && gap <= BDR_DICTSEL_GAP_MAX && !(gap & (gap - 1));
}

static int sampler_init(struct bdr_dictsel_sampler *s, uint32_t gap)
{
	if (!gap)
		gap = BDR_DICTSEL_GAP_DEFAULT;
	if (!gap_ok(gap))
		return -EINVAL;
	memset(s, 0, sizeof(*s));
	s->gap = gap;
	s->thresh = UINT64_MAX / gap + 1; /* 2^64 / gap: top log2(gap) bits zero */
	s->mingap = gap / MINGAP_DIV;
	return 0;
}

static uint32_t mix_key(uint64_t h)
{
	h ^= h >> 31;
	h *= 0x9E3779B97F4A7C15ull;
	h ^= h >> 29;
	return (uint32_t)(h >> 32);
}

/* Called for each anchor (offset of its first byte, key); non-zero stops. */
typedef int (*emit_fn)(void *arg, uint64_t off, uint32_t key);

static int sampler_run(struct bdr_dictsel_sampler *s, const uint8_t *p, size_t len, emit_fn emit,
		       void *arg)
{
	uint64_t h = s->hash;
	const uint64_t thresh = s->thresh;
	int err = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		h = (h << 2) + table[p[i]];
		if (__builtin_expect(h >= thresh, 1))
			continue;
		uint64_t end = s->pos + i + 1;
		if (end < BDR_DICTSEL_ANCHOR_LEN)
			continue;
		uint64_t start = end - BDR_DICTSEL_ANCHOR_LEN;
		if (s->have_last && start - s->last < s->mingap)
			continue;
		uint32_t key = mix_key(h);
		if (s->have_last && key == s->lastkey)
			continue;
		s->last = start;
		s->lastkey = key;
		s->have_last = true;
		if ((err = emit(arg, start, key))) {
			i++;
			break;
		}
	}
	s->hash = h;
	s->pos += i;
	return err;
}

/* ---- sketches ---- */

int bdr_dictsel_sketch_init(struct bdr_dictsel_sketch *k, uint32_t gap)
{
	memset(k, 0, sizeof(*k));
	return sampler_init(&k->s, gap);
}

static void sketch_add(struct bdr_dictsel_sketch *k, uint32_t key)
{
	uint32_t lo = 0, hi = k->n;

	if (k->n == BDR_DICTSEL_SKETCH_K && key >= k->key[k->n - 1])
		return;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (k->key[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < k->n && k->key[lo] == key)
		return;
	if (k->n < BDR_DICTSEL_SKETCH_K)
		k->n++;
	memmove(&k->key[lo + 1], &k->key[lo], (k->n - 1 - lo) * sizeof(k->key[0]));
	k->key[lo] = key;
}

static int sketch_emit(void *arg, uint64_t off, uint32_t key)
{
	(void)off;
	sketch_add(arg, key);
	return 0;
}

void bdr_dictsel_sketch_update(struct bdr_dictsel_sketch *k, const void *buf, size_t len)
{
	sampler_run(&k->s, buf, len, sketch_emit, k);
}

double bdr_dictsel_sketch_score(const struct bdr_dictsel_sketch *a, const struct bdr_dictsel_sketch *b)
{
	uint32_t tau = UINT32_MAX, count = 0, hits = 0;

	if (!a->n || !b->n || a->s.gap != b->s.gap)
		return 0.0;
	/* Below tau both sketches hold every key their file has. */
	if (a->n == BDR_DICTSEL_SKETCH_K)
		tau = a->key[a->n - 1];
	if (b->n == BDR_DICTSEL_SKETCH_K && b->key[b->n - 1] < tau)
		tau = b->key[b->n - 1];
	for (uint32_t i = 0, j = 0; i < a->n && a->key[i] <= tau; i++) {
		count++;
		while (j < b->n && b->key[j] < a->key[i])
			j++;
		hits += j < b->n && b->key[j] == a->key[i];
	}
	return count ? (double)hits / count : 0.0;
}

/* ---- index ---- */

/* 12 bytes: offsets up to 2^64 without padding. */
struct anchor {
	uint32_t key;
	uint32_t hi, lo;
};

struct bdr_dictsel_index {
	struct bdr_dictsel_sketch sk; /* its sampler samples the file */
	struct anchor *a;
	size_t n, cap;
	bool finished, failed;
};

static uint64_t anchor_off(const struct anchor *a)
{
	return (uint64_t)a->hi << 32 | a->lo;
}

int bdr_dictsel_index_new(struct bdr_dictsel_index **out, uint32_t gap)
{
	struct bdr_dictsel_index *ix;
	int err;

	*out = NULL;
	if (!(ix = calloc(1, sizeof(*ix))))
		return -ENOMEM;
	if ((err = bdr_dictsel_sketch_init(&ix->sk, gap))) {
		free(ix);
		return err;
	}
	*out = ix;
	return 0;
}

void bdr_dictsel_index_free(struct bdr_dictsel_index *ix)
{
	if (!ix)
		return;
	free(ix->a);
	free(ix);
}

static int index_emit(void *arg, uint64_t off, uint32_t key)
{
	struct bdr_dictsel_index *ix = arg;

	if (ix->n == ix->cap) {
		size_t cap = ix->cap ? ix->cap * 2 : 1024;
		struct anchor *a = realloc(ix->a, cap * sizeof(*a));
		if (!a)
			return -ENOMEM;
		ix->a = a;
		ix->cap = cap;
	}
	ix->a[ix->n++] = (struct anchor){ .key = key, .hi = (uint32_t)(off >> 32), .lo = (uint32_t)off };
	sketch_add(&ix->sk, key);
	return 0;
}

int bdr_dictsel_index_add(struct bdr_dictsel_index *ix, const void *buf, size_t len)
{
	int err;

	if (ix->finished || ix->failed)
		return -EINVAL;
	if ((err = sampler_run(&ix->sk.s, buf, len, index_emit, ix)))
		ix->failed = true; /* the sampler is past the lost anchor */
	return err;
}

static int anchor_cmp(const void *pa, const void *pb)
{
	const struct anchor *a = pa, *b = pb;

	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	uint64_t x = anchor_off(a), y = anchor_off(b);
	return (x > y) - (x < y);
}

void bdr_dictsel_index_finish(struct bdr_dictsel_index *ix)
{
	if (ix->finished)
		return;
	ix->finished = true;
	if (ix->n)
		qsort(ix->a, ix->n, sizeof(ix->a[0]), anchor_cmp);
	if (ix->n < ix->cap) { /* give back the doubling's slack */
		struct anchor *a = realloc(ix->a, (ix->n ? ix->n : 1) * sizeof(*a));
		if (a) {
			ix->a = a;
			ix->cap = ix->n ? ix->n : 1;
		}
	}
}

int bdr_dictsel_index_fd(struct bdr_dictsel_index **out, int fd, uint32_t gap)
{
	struct bdr_dictsel_index *ix;
	uint8_t *buf;
	uint64_t off = 0;
	int err;

	*out = NULL;
	if ((err = bdr_dictsel_index_new(&ix, gap)))
		return err;
	if (!(buf = malloc(READ_BUF))) {
		bdr_dictsel_index_free(ix);
		return -ENOMEM;
	}
	for (;;) {
		ssize_t r = pread(fd, buf, READ_BUF, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = -errno;
			break;
		}
		if (r == 0)
			break;
		if ((err = bdr_dictsel_index_add(ix, buf, (size_t)r)))
			break;
		off += (uint64_t)r;
	}
	free(buf);
	if (err) {
		bdr_dictsel_index_free(ix);
		return err;
	}
	bdr_dictsel_index_finish(ix);
	*out = ix;
	return 0;
}

void bdr_dictsel_index_stats(const struct bdr_dictsel_index *ix, struct bdr_dictsel_stats *st)
{
	st->size = ix->sk.s.pos;
	st->anchors = ix->n;
	st->bytes = sizeof(*ix) + ix->cap * sizeof(ix->a[0]);
	st->gap = ix->sk.s.gap;
}

void bdr_dictsel_index_anchor(const struct bdr_dictsel_index *ix, size_t i, uint64_t *off,
			      uint32_t *key)
{
	*off = anchor_off(&ix->a[i]);
	*key = ix->a[i].key;
}

const struct bdr_dictsel_sketch *bdr_dictsel_index_sketch(const struct bdr_dictsel_index *ix)
{
	return &ix->sk;
}

/* ---- picking ---- */

struct chunk_anchor {
	uint32_t q;     /* offset in the chunk */
	uint32_t key;
	size_t first;   /* its keys in the index: [first, first + count) */
	uint32_t count;
};

struct chunk_sample {
	struct chunk_anchor *a;
	uint32_t n, cap;
};

static int chunk_emit(void *arg, uint64_t off, uint32_t key)
{
	struct chunk_sample *cs = arg;

	if (cs->n == cs->cap) /* cannot happen: cap covers the min gap */
		return 1;
	cs->a[cs->n++] = (struct chunk_anchor){ .q = (uint32_t)off, .key = key };
	return 0;
}

/* First anchor of the index with key >= key. */
static size_t lower_bound(const struct bdr_dictsel_index *ix, uint32_t key)
{
	size_t lo = 0, hi = ix->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ix->a[mid].key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* One match: the window starts w in [lo, hi] serve it. */
struct match {
	int64_t lo, hi;
	int64_t delta; /* o - q */
	uint32_t q;
	int32_t weight;
};

struct event {
	int64_t pos;
	int32_t dw;
};

static int event_cmp(const void *pa, const void *pb)
{
	const struct event *a = pa, *b = pb;

	return (a->pos > b->pos) - (a->pos < b->pos);
}

static int q_cmp(const void *pa, const void *pb)
{
	const struct match *a = pa, *b = pb;

	return (a->q > b->q) - (a->q < b->q);
}

static int delta_cmp(const void *pa, const void *pb)
{
	const struct match *a = pa, *b = pb;

	return (a->delta > b->delta) - (a->delta < b->delta);
}

/* How far before delta (the old offset of the chunk's first byte, under
 * one alignment) a window must start at the latest: a full window so that
 * deflate still reaches its first bytes from the chunk's start; a shorter
 * one so that it holds the chunk's start at all. */
static int64_t reach_cut(int64_t wlen)
{
	return wlen > (int64_t)BDR_DICTSEL_REACH ? wlen - (int64_t)BDR_DICTSEL_REACH : 0;
}

/* Window starts [lo, hi] for a chunk wholly aligned at delta: its first
 * scan bytes in the window and their first byte reachable from q = 0. */
static void aligned_range(int64_t delta, uint32_t scan, int64_t wlen, int64_t *lo, int64_t *hi)
{
	*lo = delta + scan - wlen;
	*hi = delta - reach_cut(wlen); /* >= lo: scan <= REACH */
}

static int64_t place_in(int64_t lo, int64_t hi, enum bdr_dictsel_place place)
{
	switch (place) {
	case BDR_DICTSEL_PLACE_LO:
	case BDR_DICTSEL_PLACE_VOTE_END:
		return lo;
	case BDR_DICTSEL_PLACE_HI:
	case BDR_DICTSEL_PLACE_VOTE_START:
		return hi;
	default:
		return lo + (hi - lo) / 2;
	}
}

/* The sweep: the start covered by the greatest total weight. */
static int sweep(const struct match *m, size_t nm, enum bdr_dictsel_place place, int64_t *w)
{
	struct event *ev = malloc(2 * nm * sizeof(*ev));
	int64_t best = 0, sum = 0, blo = 0, bhi = 0;

	if (!ev)
		return -ENOMEM;
	for (size_t i = 0; i < nm; i++) {
		ev[2 * i] = (struct event){ m[i].lo, m[i].weight };
		ev[2 * i + 1] = (struct event){ m[i].hi + 1, -m[i].weight };
	}
	qsort(ev, 2 * nm, sizeof(*ev), event_cmp);
	for (size_t i = 0; i < 2 * nm;) {
		int64_t pos = ev[i].pos;
		while (i < 2 * nm && ev[i].pos == pos)
			sum += ev[i++].dw;
		/* sum holds on [pos, next event) */
		if (sum > best) {
			best = sum;
			blo = pos;
			bhi = i < 2 * nm ? ev[i].pos - 1 : pos;
		}
	}
	free(ev);
	if (!best)
		return 0;
	*w = place_in(blo, bhi, place);
	return 1;
}

/* The vote: the alignment with the greatest total weight. */
static int vote(struct match *m, size_t nm, uint32_t scan, int64_t wlen,
		enum bdr_dictsel_place place, int64_t *w)
{
	int64_t best = 0, bdelta = 0, lo, hi;

	qsort(m, nm, sizeof(*m), delta_cmp);
	for (size_t i = 0; i < nm;) {
		int64_t d = m[i].delta, sum = 0;
		while (i < nm && m[i].delta == d)
			sum += m[i++].weight;
		if (sum > best) {
			best = sum;
			bdelta = d;
		}
	}
	if (!best)
		return 0;
	aligned_range(bdelta, scan, wlen, &lo, &hi);
	*w = place_in(lo, hi, place);
	return 1;
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* The window: the chunk and BDR_DICTSEL_MARGIN either side, within the
 * file and zlib's 32 KiB. */
static int64_t window_len(uint64_t size, uint32_t len)
{
	uint64_t w = (uint64_t)len + 2 * BDR_DICTSEL_MARGIN;

	if (w > BDR_DICTSEL_WINDOW_MAX)
		w = BDR_DICTSEL_WINDOW_MAX;
	return (int64_t)(w < size ? w : size);
}

int bdr_dictsel_pick_place(const struct bdr_dictsel_index *ix, const void *chunk,
			   uint32_t len, uint64_t new_off, enum bdr_dictsel_place place,
			   struct bdr_dictsel_window *win)
{
	const uint64_t size = ix->sk.s.pos;
	struct chunk_sample cs = { 0 };
	struct bdr_dictsel_sampler s;
	struct match *m = NULL;
	size_t nm = 0;
	int64_t w = 0;
	int found = 0, err = 0;

	memset(win, 0, sizeof(*win));
	if (!len || len > BDR_CHUNK_MAX_LIMIT || !ix->finished || ix->failed ||
	    (unsigned)place > BDR_DICTSEL_PLACE_VOTE_START)
		return -EINVAL;
	if (!size)
		return 0; /* BDR_DICTSEL_NONE */
	const uint32_t scan = len < BDR_DICTSEL_REACH ? len : BDR_DICTSEL_REACH;
	const int64_t wlen = window_len(size, len), cut = reach_cut(wlen);
	const int64_t wmax = (int64_t)(size - (uint64_t)wlen);

	/* Sample the reachable part of the chunk. */
	if (sampler_init(&s, ix->sk.s.gap))
		return -EINVAL;
	cs.cap = scan / s.mingap + 1;
	if (!(cs.a = malloc(cs.cap * sizeof(*cs.a))))
		return -ENOMEM;
	sampler_run(&s, chunk, scan, chunk_emit, &cs);
	win->anchors = cs.n;

	/* Look each up; a key too common in the old file says nothing. */
	size_t total = 0;
	for (uint32_t i = 0; i < cs.n; i++) {
		struct chunk_anchor *a = &cs.a[i];
		size_t j = lower_bound(ix, a->key), k = j;
		while (k < ix->n && ix->a[k].key == a->key && k - j <= BDR_DICTSEL_MAX_OCC)
			k++;
		a->first = j;
		a->count = (uint32_t)(k - j);
		if (a->count)
			win->matched++;
		if (a->count > BDR_DICTSEL_MAX_OCC)
			a->count = 0;
		total += a->count;
	}
	if (total && !(m = malloc(total * sizeof(*m)))) {
		free(cs.a);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < cs.n; i++) {
		const struct chunk_anchor *a = &cs.a[i];
		for (uint32_t k = 0; k < a->count; k++) {
			int64_t o = (int64_t)anchor_off(&ix->a[a->first + k]);
			struct match mt = {
				.lo = o + BDR_DICTSEL_ANCHOR_LEN - wlen,
				.hi = o - a->q - cut,
				.delta = o - a->q,
				.q = a->q,
				.weight = WEIGHT_UNIT / (int32_t)a->count,
			};
			mt.lo = clamp64(mt.lo, 0, wmax);
			mt.hi = clamp64(mt.hi, -1, wmax);
			if (mt.lo <= mt.hi)
				m[nm++] = mt;
		}
	}
	free(cs.a);

	if (nm && place >= BDR_DICTSEL_PLACE_VOTE_END) {
		found = vote(m, nm, scan, wlen, place, &w);
		qsort(m, nm, sizeof(*m), q_cmp); /* back in chunk order */
	}
	else if (nm)
		found = sweep(m, nm, place, &w);
	if (found < 0) {
		err = found;
		goto out;
	}
	w = clamp64(w, 0, wmax);
	/* Anchors the window serves (a chunk anchor counts once). */
	uint32_t last_q = UINT32_MAX;
	for (size_t i = 0; found && i < nm; i++) {
		if (m[i].lo <= w && w <= m[i].hi && m[i].q != last_q) {
			win->covered++;
			last_q = m[i].q;
		}
	}
	if (!win->covered) {
		int64_t lo, hi;
		aligned_range((int64_t)new_off, scan, wlen, &lo, &hi);
		w = clamp64(place_in(lo, hi, place), 0, wmax);
	}
	win->how = win->covered ? BDR_DICTSEL_ANCHORED : BDR_DICTSEL_SAME_OFFSET;
	win->off = (uint64_t)w;
	win->len = (uint32_t)wlen;
out:
	free(m);
	return err;
}

int bdr_dictsel_pick(const struct bdr_dictsel_index *ix, const void *chunk, uint32_t len,
		     uint64_t new_off, struct bdr_dictsel_window *w)
{
	return bdr_dictsel_pick_place(ix, chunk, len, new_off, BDR_DICTSEL_PLACE_MID, w);
}
