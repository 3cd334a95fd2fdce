/* Who may send and remove which package (trust.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "bdr/error.h"
#include "daemon/trust.h"

static int refuse(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int refuse(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
	return -BDR_EKEY;
}

/* The one peer that sends only its own versions and lists package. */
static const struct bdr_peer_config *pin_of(const struct bdr_config *cfg, const char *package)
{
	for (size_t i = 0; i < cfg->n_peers; i++) {
		const struct bdr_peer_config *p = &cfg->peers[i];

		if (p->packages && !bdr_config_peer_relays(p) && bdr_config_peer_lists(p, package))
			return p;
	}
	return NULL;
}

int bdr_trust_peer(const struct bdr_config *cfg, const char *peer, const char *package,
		   struct bdr_trust *t, char *why, size_t n)
{
	const struct bdr_peer_config *p = bdr_config_peer(cfg, peer);
	const struct bdr_peer_config *parent = bdr_config_parent(cfg), *pin;

	memset(t, 0, sizeof(*t));
	why[0] = '\0';
	if (!p)
		return refuse(why, n, "%s is not a configured peer", peer);
	if (parent && parent != p)
		return refuse(why, n, "only this site's parent, %s, may send it packages; %s is its %s",
			      parent->name, peer, p->relation == BDR_REL_CHILD ? "child" : "peer");
	if (p->relation == BDR_REL_CHILD)
		return refuse(why, n, "%s is this site's child, which may not send it packages", peer);
	if (!bdr_config_peer_lists(p, package))
		return refuse(why, n, "%s may not send package %s: its packages are %s", peer, package,
			      p->packages);
	snprintf(t->peer, sizeof(t->peer), "%s", p->name);
	memcpy(t->peer_key, p->public_key, BDR_PK_LEN);
	t->relays = bdr_config_peer_relays(p);
	if ((pin = pin_of(cfg, package))) {
		t->pinned = true;
		snprintf(t->pin_site, sizeof(t->pin_site), "%s", pin->name);
		memcpy(t->pin_key, pin->public_key, BDR_PK_LEN);
	}
	if (pin && pin != p && !t->relays)
		return refuse(why, n, "package %s belongs to origin %s (bdr.conf), and %s may send "
			      "only the packages it originates (accept = own)", package, pin->name, peer);
	return 0;
}

void bdr_trust_self(const struct bdr_config *cfg, const char *site, const uint8_t key[BDR_PK_LEN],
		    const char *package, struct bdr_trust *t)
{
	const struct bdr_peer_config *pin = pin_of(cfg, package);

	memset(t, 0, sizeof(*t));
	snprintf(t->peer, sizeof(t->peer), "%s", site);
	memcpy(t->peer_key, key, BDR_PK_LEN);
	t->relays = true;
	if (pin) {
		t->pinned = true;
		snprintf(t->pin_site, sizeof(t->pin_site), "%s", pin->name);
		memcpy(t->pin_key, pin->public_key, BDR_PK_LEN);
	}
}

/* The origin that applies: the configuration's, else the recorded one. */
static bool origin_of(const struct bdr_trust *t, const struct bdr_db_origin *stored,
		      const char **site, const uint8_t **key)
{
	if (t->pinned) {
		*site = t->pin_site, *key = t->pin_key;
		return true;
	}
	if (stored) {
		*site = stored->site, *key = stored->signer;
		return true;
	}
	return false;
}

int bdr_trust_version(const struct bdr_trust *t, const struct bdr_db_origin *stored,
		      const char *package, uint64_t version, const char *site,
		      const uint8_t signer[BDR_PK_LEN], char *why, size_t n)
{
	char okey[BDR_KEY_B64_LEN + 1], skey[BDR_KEY_B64_LEN + 1];
	const char *osite;
	const uint8_t *key;

	why[0] = '\0';
	bdr_key_pk_to_b64(signer, skey);
	if (origin_of(t, stored, &osite, &key) && sodium_memcmp(key, signer, BDR_PK_LEN)) {
		bdr_key_pk_to_b64(key, okey);
		return refuse(why, n, "package %s belongs to origin %s (key %s), refusing version %llu "
			      "signed by %s (key %s)", package, osite, okey, (unsigned long long)version,
			      site, skey);
	}
	if (!t->relays && sodium_memcmp(t->peer_key, signer, BDR_PK_LEN))
		return refuse(why, n, "%s may send only the packages it originates (accept = own), "
			      "refusing version %llu of %s signed by %s (key %s)", t->peer,
			      (unsigned long long)version, package, site, skey);
	return 0;
}

int bdr_trust_remove(const struct bdr_trust *t, const struct bdr_db_origin *stored,
		     const char *package, char *why, size_t n)
{
	char okey[BDR_KEY_B64_LEN + 1];
	const char *osite;
	const uint8_t *key;

	why[0] = '\0';
	if (t->relays || !origin_of(t, stored, &osite, &key) ||
	    !sodium_memcmp(key, t->peer_key, BDR_PK_LEN))
		return 0;
	bdr_key_pk_to_b64(key, okey);
	return refuse(why, n, "package %s belongs to origin %s (key %s); %s, which may send only "
		      "the packages it originates (accept = own), may not remove it", package, osite,
		      okey, t->peer);
}

int bdr_trust_expected(const struct bdr_trust *t, const struct bdr_db_origin *stored,
		       const char *package, uint8_t key[BDR_PK_LEN], char *why, size_t n)
{
	char okey[BDR_KEY_B64_LEN + 1];
	const char *osite;
	const uint8_t *k;

	why[0] = '\0';
	if (!origin_of(t, stored, &osite, &k)) {
		if (t->relays)
			return 1;
		memcpy(key, t->peer_key, BDR_PK_LEN);
		return 0;
	}
	if (!t->relays && sodium_memcmp(k, t->peer_key, BDR_PK_LEN)) {
		bdr_key_pk_to_b64(k, okey);
		return refuse(why, n, "package %s belongs to origin %s (key %s), and %s may send only "
			      "the packages it originates (accept = own)", package, osite, okey, t->peer);
	}
	memcpy(key, k, BDR_PK_LEN);
	return 0;
}

int bdr_trust_snapshot(const struct bdr_config *cfg, struct bdr_config *out)
{
	memset(out, 0, sizeof(*out));
	if (cfg->n_peers && !(out->peers = calloc(cfg->n_peers, sizeof(*out->peers))))
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_peers; i++) {
		const struct bdr_peer_config *p = &cfg->peers[i];
		struct bdr_peer_config *q = &out->peers[out->n_peers++];

		memcpy(q->name, p->name, sizeof(q->name));
		memcpy(q->public_key, p->public_key, BDR_PK_LEN);
		q->relation = p->relation;
		q->accept = p->accept;
		if (p->packages && !(q->packages = strdup(p->packages))) {
			bdr_config_free(out);
			return -ENOMEM;
		}
	}
	return 0;
}
