/* Who may send and remove which package (bdr.conf(5), ORIGINS and
 * HIERARCHY), apart from the code that receives: a package belongs to its
 * origin, the site whose key signs its versions, and every version this
 * site accepts must carry that signature, from whichever peer it comes.
 *
 * Pure: the configuration (or a snapshot of its [peer] sections) and the
 * origin the site database recorded go in, a verdict and a reason come
 * out. No loop, no I/O. The receiver decides in two steps: bdr_trust_peer
 * on the loop thread when an OFFER arrives (the package is known, the
 * manifest not yet), bdr_trust_version on the worker that reads the
 * manifest, with the struct bdr_trust the first step filled (workers never
 * read the configuration, which a reload replaces). */
#ifndef BDR_DAEMON_TRUST_H
#define BDR_DAEMON_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bdr/db.h"
#include "daemon/config.h"

/* What one peer may do with one package. */
struct bdr_trust {
	char peer[BDR_MAX_SITE_NAME + 1];
	uint8_t peer_key[BDR_PK_LEN];
	bool relays;                     /* versions of any origin; else its own only */
	bool pinned;                     /* the configuration names the origin: */
	char pin_site[BDR_MAX_SITE_NAME + 1];
	uint8_t pin_key[BDR_PK_LEN];
};

/* Whether peer may send (or remove) package at all: a configured peer,
 * this site's parent if it has one, never a child, one whose packages
 * key lists package, and (with accept = own) not a package the
 * configuration pins to another origin. 0 and *t, or -BDR_EKEY with why. */
int bdr_trust_peer(const struct bdr_config *cfg, const char *peer, const char *package,
		   struct bdr_trust *t, char *why, size_t n);

/* This site's own: what a bundle it wrote itself may carry (any origin's
 * version, as it relays them), with the configuration's pin of package. */
void bdr_trust_self(const struct bdr_config *cfg, const char *site, const uint8_t key[BDR_PK_LEN],
		    const char *package, struct bdr_trust *t);

/* Whether version of package, signed by signer (site: the name its
 * manifest gives), may be accepted from t's peer. stored: the origin the
 * site database holds for package (NULL: none yet; the configuration's
 * pin, if any, overrides it). 0, or -BDR_EKEY with why naming both sites. */
int bdr_trust_version(const struct bdr_trust *t, const struct bdr_db_origin *stored,
		      const char *package, uint64_t version, const char *site,
		      const uint8_t signer[BDR_PK_LEN], char *why, size_t n);

/* Whether t's peer may remove package: one that relays may remove what it
 * may send; one that sends only its own versions only a package it is the
 * origin of (or one that has no origin here: nothing of it is held). */
int bdr_trust_remove(const struct bdr_trust *t, const struct bdr_db_origin *stored,
		     const char *package, char *why, size_t n);

/* The key every version of package from t's peer must be signed by,
 * given stored (as bdr_trust_version), for a reader that checks the
 * signer as it decodes (a bundle's): 0 and key; 1 when any key may (a
 * relaying peer's first version of a package); -BDR_EKEY with why when no
 * key can (a peer that sends only its own versions, of another origin's
 * package). */
int bdr_trust_expected(const struct bdr_trust *t, const struct bdr_db_origin *stored,
		       const char *package, uint8_t key[BDR_PK_LEN], char *why, size_t n);

/* A copy of cfg's [peer] sections as far as the decisions above read them
 * (name, key, relation, packages, accept), for a worker that decides
 * later. Free with bdr_config_free. 0 or -ENOMEM. */
int bdr_trust_snapshot(const struct bdr_config *cfg, struct bdr_config *out);

#endif
