/* libFuzzer target for the wire message decoder (proto/wire.md,
 * "Messages"). Properties checked; any failure aborts:
 *   - a rejected input leaves no message behind (type 0);
 *   - an accepted one re-encodes to exactly the input bytes (one valid
 *     encoding per message: the encoder and decoder agree on every rule
 *     and on which fields are present);
 *   - the refs of an accepted NEED are all within their limits;
 *   - bdr_wire_text turns the input, read as a C string, into a text the
 *     encoder and decoder accept unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bdr/error.h"
#include "bdr/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int cond)
{
	if (!cond)
		abort();
}

static void check_need(const struct bdr_msg *m)
{
	struct bdr_chunk_ref ref;

	must(m->need.count <= BDR_WIRE_NEED_MAX);
	for (uint32_t i = 0; i < m->need.count; i++) {
		bdr_wire_need_ref(m, i, &ref);
		must(ref.len >= 1 && ref.len <= BDR_CHUNK_MAX_LIMIT);
	}
}

static void check_reencodes(const struct bdr_msg *m, const uint8_t *data, size_t size)
{
	struct bdr_diag d;
	struct bdr_wbuf w;

	bdr_wbuf_init(&w, BDR_WIRE_MSG_MAX);
	must(bdr_wire_encode(m, &w, &d) == 0);
	must(w.len == size && !memcmp(w.buf, data, size));
	bdr_wbuf_free(&w);
}

/* The input as a C string, sanitised, then sent as a CANCEL reason. */
static void check_text(const uint8_t *data, size_t size)
{
	static char in[BDR_WIRE_TEXT_MAX * 2 + 1];
	struct bdr_msg m = { .type = BDR_MSG_CANCEL }, back;
	size_t n = size < sizeof(in) - 1 ? size : sizeof(in) - 1;
	struct bdr_diag d;
	struct bdr_wbuf w;

	memcpy(in, data, n);
	in[n] = '\0';
	bdr_wire_text(m.cancel.reason, in);
	bdr_wbuf_init(&w, BDR_WIRE_MSG_MAX);
	must(bdr_wire_encode(&m, &w, &d) == 0);
	must(bdr_wire_decode(w.buf, w.len, &back, &d) == 0);
	must(!strcmp(back.cancel.reason, m.cancel.reason));
	bdr_wbuf_free(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bdr_msg m;
	struct bdr_diag d;

	check_text(data, size);
	if (bdr_wire_decode(data, size, &m, &d) != 0) {
		must(m.type == 0);
		return 0;
	}
	must(strcmp(bdr_wire_type_name(m.type), "unknown") != 0);
	if (m.type == BDR_MSG_NEED)
		check_need(&m);
	check_reencodes(&m, data, size);
	return 0;
}
