/* Manifests: the in-memory form, its validation, and the canonical signed
 * encoding of proto/manifest.md. The decoder and bdr_manifest_validate()
 * share every structural check (check_header, check_entry), so the encoder
 * can never sign something the decoder would reject. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdr/chunker.h"
#include "bdr/codec.h"
#include "bdr/error.h"
#include "bdr/manifest.h"
#include "core/manifest_internal.h"

#define MAGIC BDR__MANIFEST_MAGIC
#define MAGIC_LEN BDR__MANIFEST_MAGIC_LEN
#define ENTRY_MIN BDR__MANIFEST_ENTRY_MIN
#define CHUNK_LEN BDR__MANIFEST_CHUNK_LEN
#define SIG_LEN BDR_SIG_LEN
#define MODE_BITS 07777u

_Static_assert(sizeof(MAGIC) - 1 == MAGIC_LEN, "magic length");
_Static_assert(BDR_MAX_PATH <= UINT16_MAX, "paths and targets fit a str16");
_Static_assert(BDR_MAX_PACKAGE_NAME <= UINT16_MAX && BDR_MAX_SITE_NAME <= UINT16_MAX, "names fit");
_Static_assert(MODE_BITS <= UINT16_MAX, "mode fits a u16");
_Static_assert(CHUNK_LEN == BDR_CHUNK_ID_LEN + 4, "chunk record");
_Static_assert(ENTRY_MIN == 2 + 1 + 1 + 2 + 8 + 8 + BDR_FILE_HASH_LEN + 4 + 2, "smallest entry");
/* Counts are bounded before they are multiplied. */
_Static_assert((uint64_t)BDR_MAX_ENTRIES * ENTRY_MIN < SIZE_MAX, "entry bytes fit size_t");
_Static_assert((uint64_t)BDR_MAX_FILE_CHUNKS * CHUNK_LEN < SIZE_MAX, "chunk bytes fit size_t");

/* ---- diagnostics ---- */

/* A name made safe for a one-line message: control bytes and backslashes
 * escaped, cut after QUOTE_MAX bytes. */
#define QUOTE_MAX 160
struct quoted {
	char s[QUOTE_MAX * 4 + 4];
};

static const char *quote(struct quoted *q, const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t o = 0;

	for (size_t i = 0; i < n && i < QUOTE_MAX; i++) {
		if (b[i] < 0x20 || b[i] == 0x7f || b[i] == '\\')
			o += (size_t)snprintf(q->s + o, sizeof(q->s) - o, "\\x%02x", b[i]);
		else
			q->s[o++] = (char)b[i];
	}
	if (n > QUOTE_MAX)
		memcpy(q->s + o, "...", 3), o += 3;
	q->s[o] = '\0';
	return q->s;
}

static int entry_verr(struct bdr_diag *d, int err, const void *path, size_t n, const char *fmt,
		      va_list ap) __attribute__((format(printf, 5, 0)));
static int entry_verr(struct bdr_diag *d, int err, const void *path, size_t n, const char *fmt,
		      va_list ap)
{
	struct quoted q;
	char why[384];

	if (!d)
		return err;
	vsnprintf(why, sizeof(why), fmt, ap);
	return bdr_diag_set(d, err, "entry '%s': %s", quote(&q, path, n), why);
}

/* "entry 'PATH': why" for a path that is a C string (may be NULL). */
static int entry_err(struct bdr_diag *d, int err, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int entry_err(struct bdr_diag *d, int err, const char *path, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err = entry_verr(d, err, path ? path : "", path ? strlen(path) : 0, fmt, ap);
	va_end(ap);
	return err;
}

/* The same for raw path bytes not yet known to be a valid string. */
static int raw_entry_err(struct bdr_diag *d, int err, const uint8_t *p, size_t n, const char *fmt,
			 ...) __attribute__((format(printf, 5, 6)));
static int raw_entry_err(struct bdr_diag *d, int err, const uint8_t *p, size_t n, const char *fmt,
			 ...)
{
	va_list ap;

	va_start(ap, fmt);
	err = entry_verr(d, err, p, n, fmt, ap);
	va_end(ap);
	return err;
}

static const char *type_name(uint8_t type)
{
	switch (type) {
	case BDR_ENTRY_FILE: return "file";
	case BDR_ENTRY_DIR: return "directory";
	case BDR_ENTRY_SYMLINK: return "symlink";
	default: return "unknown type";
	}
}

/* ---- names and paths ---- */

static bool name_byte_ok(uint8_t c, bool allow_plus)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-' || (allow_plus && c == '+');
}

static int check_name_rule(const char *what, const char *s, size_t max, bool allow_plus,
			   struct bdr_diag *d)
{
	size_t len = s ? strlen(s) : 0;
	struct quoted q;

	if (!len)
		return bdr_diag_set(d, -BDR_EFORMAT, "%s name is empty", what);
	quote(&q, s, len);
	if (len > max)
		return bdr_diag_set(d, -BDR_ELIMIT, "%s '%s': name of %zu bytes exceeds %zu", what,
				    q.s, len, max);
	if (s[0] == '.')
		return bdr_diag_set(d, -BDR_EFORMAT, "%s '%s': name starts with '.'", what, q.s);
	for (size_t i = 0; i < len; i++)
		if (!name_byte_ok((uint8_t)s[i], allow_plus))
			return bdr_diag_set(d, -BDR_EFORMAT,
					    "%s '%s': byte 0x%02x at offset %zu is not allowed "
					    "(allowed: A-Z a-z 0-9 . _ -%s)",
					    what, q.s, (uint8_t)s[i], i, allow_plus ? " +" : "");
	return 0;
}

int bdr_manifest_check_name(const char *what, const char *s, size_t max, struct bdr_diag *d)
{
	return check_name_rule(what, s, max, true, d);
}

int bdr_manifest_check_package(const char *s, struct bdr_diag *d)
{
	return check_name_rule("package", s, BDR_MAX_PACKAGE_NAME, true, d);
}

int bdr_manifest_check_site(const char *s, struct bdr_diag *d)
{
	return check_name_rule("site", s, BDR_MAX_SITE_NAME, false, d);
}

static int check_component(const char *path, const char *c, size_t n, struct bdr_diag *d)
{
	if (n == 0)
		return entry_err(d, -BDR_EPATH, path, "path has an empty component");
	if (n == 1 && c[0] == '.')
		return entry_err(d, -BDR_EPATH, path, "path contains '.'");
	if (n == 2 && c[0] == '.' && c[1] == '.')
		return entry_err(d, -BDR_EPATH, path, "path contains '..'");
	if (n > BDR_MAX_NAME)
		return entry_err(d, -BDR_ELIMIT, path, "path component of %zu bytes exceeds %d", n,
				 BDR_MAX_NAME);
	return 0;
}

int bdr_manifest_check_path(const char *path, struct bdr_diag *d)
{
	size_t len = path ? strlen(path) : 0;

	if (!len)
		return entry_err(d, -BDR_EPATH, path, "empty path");
	if (len > BDR_MAX_PATH)
		return entry_err(d, -BDR_ELIMIT, path, "path of %zu bytes exceeds %d", len,
				 BDR_MAX_PATH);
	if (path[0] == '/')
		return entry_err(d, -BDR_EPATH, path, "path is absolute");
	if (path[len - 1] == '/')
		return entry_err(d, -BDR_EPATH, path, "path has a trailing '/'");
	for (const char *c = path;;) {
		size_t n = strcspn(c, "/");
		int err = check_component(path, c, n, d);
		if (err)
			return err;
		if (!c[n])
			return 0;
		c += n + 1;
	}
}

int bdr_manifest_check_symlink(const char *path, const char *target, struct bdr_diag *d)
{
	size_t len = target ? strlen(target) : 0, depth = 0;
	struct quoted q;

	if (!len)
		return entry_err(d, -BDR_EPATH, path, "empty symlink target");
	if (len > BDR_MAX_PATH)
		return entry_err(d, -BDR_ELIMIT, path, "symlink target of %zu bytes exceeds %d", len,
				 BDR_MAX_PATH);
	quote(&q, target, len);
	if (target[0] == '/')
		return entry_err(d, -BDR_EPATH, path, "symlink target '%s' is absolute", q.s);
	for (const char *p = path ? path : ""; *p; p++)
		depth += *p == '/'; /* components of the link's directory */
	for (const char *c = target; *c;) {
		size_t n = strcspn(c, "/");
		if (n == 2 && c[0] == '.' && c[1] == '.') {
			if (depth == 0)
				return entry_err(d, -BDR_EPATH, path,
						 "symlink target '%s' leaves the package root", q.s);
			depth--;
		} else if (n > 0 && !(n == 1 && c[0] == '.')) {
			depth++;
		}
		c += n + (c[n] == '/');
	}
	return 0;
}

/* ---- the in-memory manifest ---- */

void bdr_manifest_init(struct bdr_manifest *m)
{
	*m = (struct bdr_manifest){ 0 };
}

static void entry_free(struct bdr_entry *e)
{
	free(e->path);
	free(e->target);
	free(e->chunks);
}

void bdr_manifest_free(struct bdr_manifest *m)
{
	for (uint32_t i = 0; i < m->nentries; i++)
		entry_free(&m->entries[i]);
	free(m->entries);
	free(m->package);
	free(m->site);
	bdr_manifest_init(m);
}

struct bdr_entry *bdr_manifest_add(struct bdr_manifest *m)
{
	if (m->nentries == m->cap) {
		if (m->cap > UINT32_MAX / 2)
			return NULL;
		uint32_t cap = m->cap ? m->cap * 2 : 16;
		struct bdr_entry *v = reallocarray(m->entries, cap, sizeof(*v));
		if (!v)
			return NULL;
		m->entries = v;
		m->cap = cap;
	}
	struct bdr_entry *e = &m->entries[m->nentries++];
	*e = (struct bdr_entry){ 0 };
	return e;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct bdr_entry *x = a, *y = b;

	return strcmp(x->path ? x->path : "", y->path ? y->path : "");
}

void bdr_manifest_sort(struct bdr_manifest *m)
{
	if (m->nentries > 1)
		qsort(m->entries, m->nentries, sizeof(*m->entries), entry_cmp);
}

/* strcmp(s, the n bytes of p), where p holds no NUL. */
static int cmp_n(const char *s, const char *p, size_t n)
{
	int c = strncmp(s, p, n);

	return c ? c : s[n] != '\0';
}

/* Binary search among the first n entries, which are sorted. */
static const struct bdr_entry *find_n(const struct bdr_entry *v, uint32_t n, const char *p,
				      size_t plen)
{
	uint32_t lo = 0, hi = n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = cmp_n(v[mid].path ? v[mid].path : "", p, plen);
		if (c == 0)
			return &v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct bdr_entry *bdr_manifest_find(const struct bdr_manifest *m, const char *path)
{
	return m->entries ? find_n(m->entries, m->nentries, path, strlen(path)) : NULL;
}

/* ---- structural checks shared by validate and decode ---- */

static int check_header(const struct bdr_manifest *m, struct bdr_diag *d)
{
	int err = bdr_manifest_check_package(m->package, d);

	if (!err)
		err = bdr_manifest_check_site(m->site, d);
	if (!err && m->version == 0)
		err = bdr_diag_set(d, -BDR_EFORMAT, "package '%s': version 0 is invalid", m->package);
	if (!err && m->version > BDR_VERSION_MAX)
		err = bdr_diag_set(d, -BDR_ELIMIT, "package '%s': version %" PRIu64 " is above the "
				   "largest version number, %" PRIu64, m->package, m->version,
				   BDR_VERSION_MAX);
	return err;
}

static int check_order(const struct bdr_entry *prev, const struct bdr_entry *e, struct bdr_diag *d)
{
	int c = strcmp(prev->path, e->path);
	struct quoted q;

	if (c == 0)
		return entry_err(d, -BDR_EDUP, e->path, "duplicate path");
	if (c > 0)
		return entry_err(d, -BDR_EORDER, e->path, "out of order: sorts before '%s'",
				 quote(&q, prev->path, strlen(prev->path)));
	return 0;
}

/* Entries [0, i) are already checked, so they are sorted and the parent,
 * which sorts before its children, is among them if it exists. */
static int check_parent(const struct bdr_manifest *m, uint32_t i, struct bdr_diag *d)
{
	const struct bdr_entry *e = &m->entries[i], *p;
	const char *slash = strrchr(e->path, '/');
	struct quoted q;

	if (!slash)
		return 0; /* the package root */
	size_t plen = (size_t)(slash - e->path);
	quote(&q, e->path, plen);
	p = find_n(m->entries, i, e->path, plen);
	if (!p)
		return entry_err(d, -BDR_EPATH, e->path, "parent '%s' is not in the manifest", q.s);
	if (p->type != BDR_ENTRY_DIR)
		return entry_err(d, -BDR_EPATH, e->path, "parent '%s' is a %s, not a directory", q.s,
				 type_name(p->type));
	return 0;
}

static int check_file(const struct bdr_entry *e, struct bdr_diag *d)
{
	uint64_t sum = 0;

	if (e->target)
		return entry_err(d, -BDR_EFORMAT, e->path, "a file has a symlink target");
	if (e->nchunks > BDR_MAX_FILE_CHUNKS)
		return entry_err(d, -BDR_ELIMIT, e->path, "%" PRIu32 " chunks exceed the limit of %u",
				 e->nchunks, BDR_MAX_FILE_CHUNKS);
	if (e->nchunks && !e->chunks)
		return entry_err(d, -BDR_EFORMAT, e->path, "chunk list is missing");
	for (uint32_t k = 0; k < e->nchunks; k++) {
		uint32_t len = e->chunks[k].len;
		if (len == 0)
			return entry_err(d, -BDR_EFORMAT, e->path, "chunk %" PRIu32 " is empty", k);
		if (len > BDR_CHUNK_MAX_LIMIT)
			return entry_err(d, -BDR_ELIMIT, e->path,
					 "chunk %" PRIu32 " of %" PRIu32 " bytes exceeds %u", k, len,
					 BDR_CHUNK_MAX_LIMIT);
		sum += len;
	}
	if (sum != e->size)
		return entry_err(d, -BDR_EFORMAT, e->path,
				 "chunk lengths sum to %" PRIu64 " bytes, size is %" PRIu64, sum,
				 e->size);
	return 0;
}

/* Directories and symlinks carry no content fields. */
static int check_no_content(const struct bdr_entry *e, struct bdr_diag *d)
{
	static const uint8_t zero[BDR_FILE_HASH_LEN];

	if (e->nchunks)
		return entry_err(d, -BDR_EFORMAT, e->path, "a %s has %" PRIu32 " chunks",
				 type_name(e->type), e->nchunks);
	if (memcmp(e->hash, zero, sizeof(zero)))
		return entry_err(d, -BDR_EFORMAT, e->path, "a %s has a nonzero file hash",
				 type_name(e->type));
	return 0;
}

static int check_dir(const struct bdr_entry *e, struct bdr_diag *d)
{
	int err = check_no_content(e, d);

	if (err)
		return err;
	if (e->size)
		return entry_err(d, -BDR_EFORMAT, e->path, "a directory has size %" PRIu64, e->size);
	if (e->target)
		return entry_err(d, -BDR_EFORMAT, e->path, "a directory has a symlink target");
	return 0;
}

static int check_link(const struct bdr_entry *e, struct bdr_diag *d)
{
	int err = check_no_content(e, d);

	if (!err)
		err = bdr_manifest_check_symlink(e->path, e->target, d);
	if (!err && e->size != strlen(e->target))
		err = entry_err(d, -BDR_EFORMAT, e->path,
				"symlink size %" PRIu64 " differs from its target's length %zu",
				e->size, strlen(e->target));
	return err;
}

static int check_entry(const struct bdr_manifest *m, uint32_t i, struct bdr_diag *d)
{
	const struct bdr_entry *e = &m->entries[i];
	int err = bdr_manifest_check_path(e->path, d);

	if (!err && i > 0)
		err = check_order(&m->entries[i - 1], e, d);
	if (err)
		return err;
	if (e->type < BDR_ENTRY_FILE || e->type > BDR_ENTRY_SYMLINK)
		return entry_err(d, -BDR_EFORMAT, e->path, "unknown entry type %u", e->type);
	if (e->mode & ~MODE_BITS)
		return entry_err(d, -BDR_EFORMAT, e->path, "mode %#" PRIo32 " has bits outside 07777",
				 e->mode);
	err = check_parent(m, i, d);
	if (err)
		return err;
	switch (e->type) {
	case BDR_ENTRY_FILE: return check_file(e, d);
	case BDR_ENTRY_DIR: return check_dir(e, d);
	default: return check_link(e, d);
	}
}

/* Symlinks that pass through other symlinks of the package. Each link's own
 * target stays inside the root (check_link), but a target that goes down
 * through another link and back up with '..' (s -> ., t -> s/..) resolves
 * outside it when a consumer follows it. So targets are resolved as the
 * kernel would, expanding every intermediate component that is a symlink
 * entry, with the kernel's limit of 40 expansions. */
#define LINK_HOPS 40
/* Each expansion adds at most one target to the directory it starts from. */
#define RESOLVE_MAX ((LINK_HOPS + 2) * (BDR_MAX_PATH + 1))

/* more: the walk goes on after this target (it is being expanded), so
 * even its last component is passed through. */
static int walk_target(const struct bdr_manifest *m, char *buf, size_t *len, const char *target,
		       bool more, int *hops)
{
	for (const char *c = target; *c;) {
		size_t n = strcspn(c, "/");
		const char *next = c + n + (c[n] == '/');
		const struct bdr_entry *e;
		size_t save = *len;

		if (n == 2 && c[0] == '.' && c[1] == '.') {
			if (*len == 0)
				return -BDR_EPATH;
			char *slash = memrchr(buf, '/', *len);
			*len = slash ? (size_t)(slash - buf) : 0;
			buf[*len] = '\0';
		} else if (n > 0 && !(n == 1 && c[0] == '.')) {
			if (*len + 1 + n >= RESOLVE_MAX)
				return -BDR_ELIMIT;
			if (*len)
				buf[(*len)++] = '/';
			memcpy(buf + *len, c, n);
			*len += n;
			buf[*len] = '\0';
			/* A final last component is not passed through. */
			e = *next || more ? bdr_manifest_find(m, buf) : NULL;
			if (e && e->type == BDR_ENTRY_SYMLINK) {
				int err;
				if (--*hops < 0)
					return -BDR_ELIMIT;
				*len = save; /* back to the link's directory */
				buf[*len] = '\0';
				if ((err = walk_target(m, buf, len, e->target, true, hops)))
					return err;
			}
		}
		c = next;
	}
	return 0;
}

static int check_link_paths(const struct bdr_manifest *m, struct bdr_diag *d)
{
	char *buf = NULL;
	int err = 0;

	for (uint32_t i = 0; i < m->nentries && !err; i++) {
		const struct bdr_entry *e = &m->entries[i];
		const char *slash;
		size_t len;
		int hops = LINK_HOPS;

		if (e->type != BDR_ENTRY_SYMLINK)
			continue;
		if (!buf && !(buf = malloc(RESOLVE_MAX)))
			return bdr_diag_set(d, -ENOMEM, "manifest: out of memory");
		slash = strrchr(e->path, '/');
		len = slash ? (size_t)(slash - e->path) : 0;
		memcpy(buf, e->path, len);
		buf[len] = '\0';
		err = walk_target(m, buf, &len, e->target, false, &hops);
		if (err == -BDR_EPATH)
			err = entry_err(d, err, e->path, "symlink target leaves the package root through another symlink");
		else if (err)
			err = entry_err(d, err, e->path, "symlink target has too many levels of symlinks");
	}
	free(buf);
	return err;
}

int bdr_manifest_validate(const struct bdr_manifest *m, struct bdr_diag *d)
{
	int err = check_header(m, d);

	if (err)
		return err;
	if (m->nentries > BDR_MAX_ENTRIES)
		return bdr_diag_set(d, -BDR_ELIMIT, "package '%s': %" PRIu32 " entries exceed the limit of %u",
				    m->package, m->nentries, BDR_MAX_ENTRIES);
	if (m->nentries && !m->entries)
		return bdr_diag_set(d, -BDR_EFORMAT, "package '%s': entry list is missing", m->package);
	for (uint32_t i = 0; i < m->nentries && !err; i++)
		err = check_entry(m, i, d);
	return err ? err : check_link_paths(m, d);
}

/* ---- encoding ---- */

static void put_entry(struct bdr_wbuf *w, const struct bdr_entry *e)
{
	bdr_w_str16(w, e->path);
	bdr_w_u8(w, e->type);
	if (e->mode > UINT16_MAX && !w->err)
		w->err = -BDR_ELIMIT; /* only the unchecked encoder gets here */
	bdr_w_u16(w, (uint16_t)e->mode);
	bdr_w_i64(w, e->mtime_ns);
	bdr_w_u64(w, e->size);
	bdr_w_bytes(w, e->hash, BDR_FILE_HASH_LEN);
	bdr_w_u32(w, e->nchunks);
	if (e->nchunks && !e->chunks && !w->err)
		w->err = -EINVAL;
	for (uint32_t k = 0; k < e->nchunks && !w->err; k++) {
		bdr_w_bytes(w, e->chunks[k].id.b, BDR_CHUNK_ID_LEN);
		bdr_w_u32(w, e->chunks[k].len);
	}
	bdr_w_str16(w, e->target);
}

static void put_body(struct bdr_wbuf *w, const struct bdr_manifest *m)
{
	bdr_w_bytes(w, MAGIC, MAGIC_LEN);
	bdr_w_u32(w, BDR_MANIFEST_FORMAT);
	bdr_w_str16(w, m->package);
	bdr_w_u64(w, m->version);
	bdr_w_str16(w, m->site);
	bdr_w_i64(w, m->created_ns);
	bdr_w_bytes(w, m->signer, BDR_PK_LEN);
	bdr_w_u32(w, m->nentries);
	if (m->nentries && !m->entries && !w->err)
		w->err = -EINVAL;
	for (uint32_t i = 0; i < m->nentries && !w->err; i++)
		put_entry(w, &m->entries[i]);
}

int bdr__manifest_encode_body(const struct bdr_manifest *m, uint8_t **out, size_t *len)
{
	struct bdr_wbuf w;

	bdr_wbuf_init(&w, BDR_MAX_MANIFEST_BYTES - SIG_LEN);
	put_body(&w, m);
	return bdr_wbuf_finish(&w, out, len);
}

static int encode_signed(struct bdr_manifest *m, const struct bdr_key *k, uint8_t **out,
			 size_t *len)
{
	static const uint8_t nosig[SIG_LEN];
	struct bdr_wbuf w;
	int err;

	memcpy(m->signer, k->pk, BDR_PK_LEN);
	bdr_wbuf_init(&w, BDR_MAX_MANIFEST_BYTES);
	put_body(&w, m);
	bdr_w_bytes(&w, nosig, SIG_LEN);
	err = bdr_wbuf_finish(&w, out, len);
	if (err)
		return err;
	crypto_sign_detached(*out + *len - SIG_LEN, NULL, *out, *len - SIG_LEN, k->sk);
	return 0;
}

int bdr__manifest_encode_unchecked(struct bdr_manifest *m, const struct bdr_key *k, uint8_t **out,
				   size_t *len)
{
	if (sodium_init() < 0)
		return -EIO;
	return encode_signed(m, k, out, len);
}

int bdr_manifest_encode(struct bdr_manifest *m, const struct bdr_key *k, uint8_t **out,
			size_t *len, struct bdr_diag *d)
{
	int err;

	*out = NULL;
	*len = 0;
	if (sodium_init() < 0)
		return bdr_diag_set(d, -EIO, "libsodium failed to initialise");
	/* libsodium's secret key is seed || public key. */
	if (sodium_memcmp(k->sk + BDR_SK_LEN - BDR_PK_LEN, k->pk, BDR_PK_LEN) != 0)
		return bdr_diag_set(d, -BDR_EKEY, "signing key: public key does not match secret key");
	err = bdr_manifest_validate(m, d);
	if (err)
		return err;
	err = encode_signed(m, k, out, len);
	if (err == -BDR_ELIMIT)
		bdr_diag_set(d, err, "package '%s' version %" PRIu64 ": manifest exceeds %llu bytes",
			     m->package, m->version, BDR_MAX_MANIFEST_BYTES);
	else if (err)
		bdr_diag_set(d, err, "package '%s': %s", m->package, bdr_strerror(err));
	return err;
}

/* ---- decoding ---- */

static char *dup_bytes(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

static int truncated_header(struct bdr_diag *d)
{
	return bdr_diag_set(d, -BDR_EFORMAT, "manifest: truncated header");
}

static int get_name(struct bdr_rbuf *r, const char *what, char **out, struct bdr_diag *d)
{
	struct quoted q;
	size_t n;
	const uint8_t *p = bdr_r_str16(r, &n);

	if (!p)
		return truncated_header(d);
	if (memchr(p, 0, n))
		return bdr_diag_set(d, -BDR_EFORMAT, "%s '%s': name contains a NUL byte", what,
				    quote(&q, p, n));
	*out = dup_bytes(p, n);
	return *out ? 0 : bdr_diag_set(d, -ENOMEM, "manifest: out of memory");
}

static int get_header(struct bdr_rbuf *r, struct bdr_manifest *m, struct bdr_diag *d)
{
	const uint8_t *magic = bdr_r_view(r, MAGIC_LEN);
	uint32_t format = bdr_r_u32(r);
	int err;

	if (magic && memcmp(magic, MAGIC, MAGIC_LEN))
		return bdr_diag_set(d, -BDR_EFORMAT, "manifest: bad magic (not a bdr manifest)");
	if (r->err)
		return truncated_header(d);
	if (format != BDR_MANIFEST_FORMAT)
		return bdr_diag_set(d, -BDR_EVERSION,
				    "manifest: format %" PRIu32 " is not supported (this build reads %d)",
				    format, BDR_MANIFEST_FORMAT);
	err = get_name(r, "package", &m->package, d);
	if (err)
		return err;
	m->version = bdr_r_u64(r);
	err = get_name(r, "site", &m->site, d);
	if (err)
		return err;
	m->created_ns = bdr_r_i64(r);
	bdr_r_bytes(r, m->signer, BDR_PK_LEN);
	if (r->err)
		return truncated_header(d);
	return check_header(m, d);
}

static int check_signature(const uint8_t *buf, size_t len, const struct bdr_manifest *m,
			   const uint8_t *expect_signer, struct bdr_diag *d)
{
	char got[BDR_KEY_B64_LEN + 1], want[BDR_KEY_B64_LEN + 1];

	if (expect_signer && sodium_memcmp(expect_signer, m->signer, BDR_PK_LEN) != 0) {
		bdr_key_pk_to_b64(m->signer, got);
		bdr_key_pk_to_b64(expect_signer, want);
		return bdr_diag_set(d, -BDR_EKEY,
				    "package '%s' version %" PRIu64 ": signed by %s, expected %s",
				    m->package, m->version, got, want);
	}
	if (crypto_sign_verify_detached(buf + len - SIG_LEN, buf, len - SIG_LEN, m->signer) != 0)
		return bdr_diag_set(d, -BDR_ESIG,
				    "package '%s' version %" PRIu64 ": signature does not verify",
				    m->package, m->version);
	return 0;
}

static int get_path(struct bdr_rbuf *r, uint32_t i, char **out, struct bdr_diag *d)
{
	size_t n;
	const uint8_t *p = bdr_r_str16(r, &n);

	if (!p)
		return bdr_diag_set(d, -BDR_EFORMAT, "entry #%" PRIu32 ": truncated path", i);
	if (n == 0)
		return bdr_diag_set(d, -BDR_EPATH, "entry '': empty path (entry #%" PRIu32 ")", i);
	if (n > BDR_MAX_PATH)
		return raw_entry_err(d, -BDR_ELIMIT, p, n, "path of %zu bytes exceeds %d", n,
				     BDR_MAX_PATH);
	if (memchr(p, 0, n))
		return raw_entry_err(d, -BDR_EPATH, p, n, "path contains a NUL byte");
	*out = dup_bytes(p, n);
	return *out ? 0 : bdr_diag_set(d, -ENOMEM, "manifest: out of memory");
}

static int get_chunks(struct bdr_rbuf *r, struct bdr_entry *e, struct bdr_diag *d)
{
	uint32_t n = bdr_r_u32(r);

	if (r->err)
		return entry_err(d, -BDR_EFORMAT, e->path, "truncated");
	if (n > BDR_MAX_FILE_CHUNKS)
		return entry_err(d, -BDR_ELIMIT, e->path, "%" PRIu32 " chunks exceed the limit of %u",
				 n, BDR_MAX_FILE_CHUNKS);
	if ((size_t)n * CHUNK_LEN > bdr_rbuf_left(r))
		return entry_err(d, -BDR_EFORMAT, e->path,
				 "%" PRIu32 " chunks do not fit in the %zu bytes left", n,
				 bdr_rbuf_left(r));
	if (!n)
		return 0;
	e->chunks = calloc(n, sizeof(*e->chunks));
	if (!e->chunks)
		return entry_err(d, -ENOMEM, e->path, "out of memory");
	e->nchunks = n;
	for (uint32_t k = 0; k < n; k++) {
		bdr_r_bytes(r, e->chunks[k].id.b, BDR_CHUNK_ID_LEN);
		e->chunks[k].len = bdr_r_u32(r);
	}
	return 0; /* cannot be short: the count was checked against the bytes left */
}

static int get_target(struct bdr_rbuf *r, struct bdr_entry *e, struct bdr_diag *d)
{
	size_t n;
	const uint8_t *p = bdr_r_str16(r, &n);

	if (!p)
		return entry_err(d, -BDR_EFORMAT, e->path, "truncated symlink target");
	if (n > BDR_MAX_PATH)
		return entry_err(d, -BDR_ELIMIT, e->path, "symlink target of %zu bytes exceeds %d", n,
				 BDR_MAX_PATH);
	if (memchr(p, 0, n))
		return entry_err(d, -BDR_EPATH, e->path, "symlink target contains a NUL byte");
	if (!n)
		return 0;
	e->target = dup_bytes(p, n);
	return e->target ? 0 : entry_err(d, -ENOMEM, e->path, "out of memory");
}

static int get_entry(struct bdr_rbuf *r, struct bdr_manifest *m, uint32_t i, struct bdr_diag *d)
{
	struct bdr_entry *e = &m->entries[i];
	int err = get_path(r, i, &e->path, d);

	if (err)
		return err;
	e->type = bdr_r_u8(r);
	e->mode = bdr_r_u16(r);
	e->mtime_ns = bdr_r_i64(r);
	e->size = bdr_r_u64(r);
	bdr_r_bytes(r, e->hash, BDR_FILE_HASH_LEN);
	err = get_chunks(r, e, d);
	if (!err)
		err = get_target(r, e, d);
	if (!err)
		err = check_entry(m, i, d);
	return err;
}

static int get_entries(struct bdr_rbuf *r, struct bdr_manifest *m, struct bdr_diag *d)
{
	uint32_t n = bdr_r_u32(r);

	if (r->err)
		return truncated_header(d);
	if (n > BDR_MAX_ENTRIES)
		return bdr_diag_set(d, -BDR_ELIMIT,
				    "package '%s': %" PRIu32 " entries exceed the limit of %u",
				    m->package, n, BDR_MAX_ENTRIES);
	if ((size_t)n * ENTRY_MIN > bdr_rbuf_left(r))
		return bdr_diag_set(d, -BDR_EFORMAT,
				    "package '%s': %" PRIu32 " entries do not fit in the %zu bytes left",
				    m->package, n, bdr_rbuf_left(r));
	if (!n)
		return 0;
	m->entries = calloc(n, sizeof(*m->entries));
	if (!m->entries)
		return bdr_diag_set(d, -ENOMEM, "manifest: out of memory");
	m->cap = n;
	for (uint32_t i = 0; i < n; i++) {
		m->nentries = i + 1; /* so that a failure frees this entry too */
		int err = get_entry(r, m, i, d);
		if (err)
			return err;
	}
	return 0;
}

/* Bounds the encoding and reads its header into m (from init), leaving r
 * at the first entry: what decode and peek both begin with. */
static int read_header(const uint8_t *buf, size_t len, struct bdr_rbuf *r, struct bdr_manifest *m,
		       struct bdr_diag *d)
{
	bdr_manifest_init(m);
	if (len > BDR_MAX_MANIFEST_BYTES)
		return bdr_diag_set(d, -BDR_ELIMIT, "manifest: %zu bytes exceed the limit of %llu",
				    len, BDR_MAX_MANIFEST_BYTES);
	if (!buf || len < SIG_LEN)
		return bdr_diag_set(d, -BDR_EFORMAT, "manifest: truncated (%zu bytes)", len);
	bdr_rbuf_init(r, buf, len - SIG_LEN);
	return get_header(r, m, d);
}

static int decode(const uint8_t *buf, size_t len, bool verify, const uint8_t *expect_signer,
		  struct bdr_manifest *m, struct bdr_diag *d)
{
	struct bdr_rbuf r;
	int err = read_header(buf, len, &r, m, d);

	if (!err && verify)
		err = check_signature(buf, len, m, expect_signer, d);
	if (!err)
		err = get_entries(&r, m, d);
	if (!err && bdr_rbuf_end(&r))
		err = bdr_diag_set(d, -BDR_EFORMAT,
				   "package '%s': %zu trailing bytes after the last entry", m->package,
				   bdr_rbuf_left(&r));
	if (!err)
		err = check_link_paths(m, d);
	if (err)
		bdr_manifest_free(m);
	return err;
}

int bdr_manifest_decode(const uint8_t *buf, size_t len, const uint8_t *expect_signer,
			struct bdr_manifest *m, struct bdr_diag *d)
{
	if (sodium_init() < 0) {
		bdr_manifest_init(m);
		return bdr_diag_set(d, -EIO, "libsodium failed to initialise");
	}
	return decode(buf, len, true, expect_signer, m, d);
}

int bdr_manifest_peek(const uint8_t *buf, size_t len, struct bdr_manifest *m, struct bdr_diag *d)
{
	struct bdr_rbuf r;
	int err = read_header(buf, len, &r, m, d);

	if (err < 0)
		bdr_manifest_free(m);
	return err;
}

int bdr__manifest_decode_unsigned(const uint8_t *buf, size_t len, struct bdr_manifest *m,
				  struct bdr_diag *d)
{
	return decode(buf, len, false, NULL, m, d);
}
