/* Who may send and remove which package (trust.h): configurations as an
 * operator writes them, loaded by the real parser, and origins as the site
 * database would hold them. Three sites in a flat configuration (owner hq,
 * receiver branch, a rogue peer branch also pins) and a tree (central ->
 * region -> dp) cover the rules of bdr.conf(5), ORIGINS. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "bdr/error.h"
#include "daemon/config.h"
#include "daemon/trust.h"
#include "testutil.h"

static char dir[PATH_MAX], conf[PATH_MAX];
static struct bdr_config cfg;
/* Keys of hq, rogue, central, region, lab: distinct, fixed. */
static uint8_t pk[5][BDR_PK_LEN];
static char b64[5][BDR_KEY_B64_LEN + 1];
enum { HQ, ROGUE, CENTRAL, REGION, LAB };
static const char *const names[] = { "hq", "rogue", "central", "region", "lab" };

static void setup(void)
{
	tu_mkdtemp(dir, "trust");
	snprintf(conf, sizeof(conf), "%s/bdr.conf", dir);
	memset(&cfg, 0, sizeof(cfg));
	for (int k = 0; k < 5; k++) {
		for (unsigned i = 0; i < BDR_PK_LEN; i++)
			pk[k][i] = (uint8_t)(17 * k + i + 1);
		bdr_key_pk_to_b64(pk[k], b64[k]);
	}
}

static void teardown(void)
{
	bdr_config_free(&cfg);
	tu_rmrf(dir);
}

TestSuite(trust, .init = setup, .fini = teardown);

#define SITE(name) "[site]\nname = " name "\nkey = /k\ndata = /d\n"

/* Loads the file: the site's section, then "[peer NAME]\npublic_key = K\n"
 * plus extra lines for each peer given as (index, extra), ending with -1. */
static void load(const char *site, ...)
{
	char text[4096];
	size_t used = (size_t)snprintf(text, sizeof(text), "%s", site);
	struct bdr_config_errors errs = { 0 };
	va_list ap;
	int k, rc;

	va_start(ap, site);
	while ((k = va_arg(ap, int)) >= 0) {
		const char *extra = va_arg(ap, const char *);
		used += (size_t)snprintf(text + used, sizeof(text) - used,
					 "[peer %s]\npublic_key = %s\n%s", names[k], b64[k], extra);
	}
	va_end(ap);
	tu_write(conf, text, strlen(text));
	bdr_config_free(&cfg);
	rc = bdr_config_load(conf, &cfg, &errs);
	cr_assert_eq(rc, 0, "%s\n%s", errs.n ? errs.v[0].text : "", text);
	bdr_config_errors_free(&errs);
}

static struct bdr_db_origin origin(int k)
{
	struct bdr_db_origin o = { .version = 1 };

	snprintf(o.site, sizeof(o.site), "%s", names[k]);
	memcpy(o.signer, pk[k], BDR_PK_LEN);
	return o;
}

/* bdr_trust_peer then bdr_trust_version, as the receiver runs them. */
static int offer(const char *peer, const char *package, uint64_t version, int signer,
		 const struct bdr_db_origin *stored, char *why, size_t n)
{
	struct bdr_trust t;
	int rc = bdr_trust_peer(&cfg, peer, package, &t, why, n);

	if (rc == 0)
		rc = bdr_trust_version(&t, stored, package, version, names[signer], pk[signer], why, n);
	return rc;
}

static int remove_by(const char *peer, const char *package, const struct bdr_db_origin *stored,
		     char *why, size_t n)
{
	struct bdr_trust t;
	int rc = bdr_trust_peer(&cfg, peer, package, &t, why, n);

	return rc == 0 ? bdr_trust_remove(&t, stored, package, why, n) : rc;
}

/* The flat configuration of the issue: branch pins hq and rogue, with the
 * defaults. rogue's own version of app, hq's package, is refused with both
 * sites named; hq's goes through; rogue may not remove it. */
Test(trust, flat_default_refuses_another_origins_version)
{
	struct bdr_db_origin hq = origin(HQ);
	char why[512], want[512];

	load(SITE("branch"), HQ, "address = 127.0.0.1:1\n", ROGUE, "", -1);
	cr_assert_eq(offer("hq", "app", 3, HQ, &hq, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(offer("rogue", "app", 1000, ROGUE, &hq, why, sizeof(why)), -BDR_EKEY);
	snprintf(want, sizeof(want), "package app belongs to origin hq (key %s), refusing version "
		 "1000 signed by rogue (key %s)", b64[HQ], b64[ROGUE]);
	cr_assert_str_eq(why, want);
	/* Nor may rogue pass hq's own signed manifest on: it sends its own only. */
	cr_assert_eq(offer("rogue", "app", 4, HQ, &hq, why, sizeof(why)), -BDR_EKEY);
	cr_assert(strstr(why, "rogue may send only the packages it originates (accept = own)"), "%s",
		  why);
	/* hq may not sign as the origin of rogue's package either. */
	struct bdr_db_origin ro = origin(ROGUE);
	cr_assert_eq(offer("hq", "tools", 2, HQ, &ro, why, sizeof(why)), -BDR_EKEY);
	cr_assert(strstr(why, "package tools belongs to origin rogue"), "%s", why);

	cr_assert_eq(remove_by("hq", "app", &hq, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(remove_by("rogue", "app", &hq, why, sizeof(why)), -BDR_EKEY);
	snprintf(want, sizeof(want), "package app belongs to origin hq (key %s); rogue, which may "
		 "send only the packages it originates (accept = own), may not remove it", b64[HQ]);
	cr_assert_str_eq(why, want);
	/* Its own package, yes; one with no origin here holds nothing to lose. */
	cr_assert_eq(remove_by("rogue", "tools", &ro, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(remove_by("rogue", "never-seen", NULL, why, sizeof(why)), 0, "%s", why);
}

/* First accept: a package branch has never seen belongs to whoever sends
 * it first, unless the configuration names its origin. Pinned, rogue's
 * version is refused even first, and the pin beats what was recorded. */
Test(trust, a_pin_prevents_the_first_accept_hijack)
{
	struct bdr_db_origin ro = origin(ROGUE);
	char why[512];

	load(SITE("branch"), HQ, "", ROGUE, "", -1);
	cr_assert_eq(offer("rogue", "app", 1000, ROGUE, NULL, why, sizeof(why)), 0,
		     "unpinned and unseen: the first sender's (the documented limit)");

	load(SITE("branch"), HQ, "packages = app, tools\n", ROGUE, "", -1);
	cr_assert_eq(offer("rogue", "app", 1000, ROGUE, NULL, why, sizeof(why)), -BDR_EKEY);
	cr_assert(strstr(why, "package app belongs to origin hq (bdr.conf), and rogue may send only "
			      "the packages it originates"), "%s", why);
	/* Recorded as rogue's (before the pin was written): the pin wins. */
	cr_assert_eq(offer("hq", "app", 3, HQ, &ro, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(remove_by("rogue", "app", &ro, why, sizeof(why)), -BDR_EKEY);
	/* hq sends only what it lists. */
	cr_assert_eq(offer("hq", "lib", 1, HQ, NULL, why, sizeof(why)), -BDR_EKEY);
	cr_assert_str_eq(why, "hq may not send package lib: its packages are app,tools");
	cr_assert_eq(remove_by("hq", "lib", NULL, why, sizeof(why)), -BDR_EKEY);
	cr_assert_eq(offer("rogue", "lib", 1, ROGUE, NULL, why, sizeof(why)), 0, "%s", why);
}

/* The tree: the dp takes versions from its parent only, relayed from their
 * origin; a middle site's own version of central's package is refused,
 * whether the origin was recorded or pinned by a [peer central] section
 * without an address. */
Test(trust, a_parent_relays_only_the_origins_signature)
{
	struct bdr_db_origin ce = origin(CENTRAL);
	char why[512], want[512];

	load(SITE("dp") "role = dp\n", REGION, "relation = parent\n", -1);
	cr_assert_eq(offer("region", "app", 2, CENTRAL, &ce, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(offer("region", "app", 1000, REGION, &ce, why, sizeof(why)), -BDR_EKEY);
	snprintf(want, sizeof(want), "package app belongs to origin central (key %s), refusing "
		 "version 1000 signed by region (key %s)", b64[CENTRAL], b64[REGION]);
	cr_assert_str_eq(why, want);
	cr_assert_eq(offer("region", "app", 1, CENTRAL, NULL, why, sizeof(why)), 0,
		     "first version of a package: any origin the parent relays");
	cr_assert_eq(remove_by("region", "app", &ce, why, sizeof(why)), 0, "%s", why);

	load(SITE("dp") "role = dp\n", REGION, "relation = parent\n", CENTRAL, "packages = app\n",
	     -1);
	cr_assert_eq(offer("region", "app", 1, REGION, NULL, why, sizeof(why)), -BDR_EKEY);
	cr_assert(strstr(why, "package app belongs to origin central (key "), "%s", why);
	cr_assert_eq(offer("region", "app", 1, CENTRAL, NULL, why, sizeof(why)), 0, "%s", why);
	/* The pinned origin is no parent: it may not send directly. */
	cr_assert_eq(offer("central", "app", 1, CENTRAL, NULL, why, sizeof(why)), -BDR_EKEY);
	cr_assert_str_eq(why, "only this site's parent, region, may send it packages; central is "
			      "its peer");
	/* The parent's packages key limits what it relays. */
	load(SITE("dp") "role = dp\n", REGION, "relation = parent\npackages = tools\n", -1);
	cr_assert_eq(offer("region", "app", 1, CENTRAL, NULL, why, sizeof(why)), -BDR_EKEY);
	cr_assert_eq(remove_by("region", "app", &ce, why, sizeof(why)), -BDR_EKEY);
}

/* accept overrides the relation's default both ways. */
Test(trust, accept_overrides_the_default)
{
	struct bdr_db_origin ce = origin(CENTRAL), lab = origin(LAB);
	char why[512];

	load(SITE("branch"), HQ, "accept = relayed\n", -1);
	cr_assert_eq(offer("hq", "app", 5, CENTRAL, &ce, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(offer("hq", "app", 5, LAB, &ce, why, sizeof(why)), -BDR_EKEY);
	cr_assert_eq(remove_by("hq", "app", &ce, why, sizeof(why)), 0, "%s", why);

	load(SITE("dp") "role = dp\n", REGION, "relation = parent\naccept = own\n", -1);
	cr_assert_eq(offer("region", "app", 5, CENTRAL, NULL, why, sizeof(why)), -BDR_EKEY);
	cr_assert_eq(offer("region", "app", 5, REGION, NULL, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(remove_by("region", "x", &lab, why, sizeof(why)), -BDR_EKEY);
}

/* Children and strangers never send. */
Test(trust, hierarchy_refusals)
{
	char why[512];

	load(SITE("region"), CENTRAL, "relation = parent\n", LAB, "relation = child\n", -1);
	cr_assert_eq(offer("lab", "app", 1, LAB, NULL, why, sizeof(why)), -BDR_EKEY);
	cr_assert_str_eq(why, "only this site's parent, central, may send it packages; lab is its "
			      "child");
	cr_assert_eq(offer("nobody", "app", 1, LAB, NULL, why, sizeof(why)), -BDR_EKEY);
	cr_assert_str_eq(why, "nobody is not a configured peer");
	load(SITE("top"), LAB, "relation = child\n", -1);
	cr_assert_eq(offer("lab", "app", 1, LAB, NULL, why, sizeof(why)), -BDR_EKEY);
	cr_assert_str_eq(why, "lab is this site's child, which may not send it packages");
}

/* What a bundle's reader is told to expect, and a snapshot decides as the
 * configuration it was taken from. */
Test(trust, expected_key_and_snapshot)
{
	struct bdr_db_origin hq = origin(HQ);
	struct bdr_config snap;
	struct bdr_trust t;
	uint8_t key[BDR_PK_LEN];
	char why[512];

	load(SITE("branch"), HQ, "packages = app\n", ROGUE, "", REGION, "accept = relayed\n", -1);
	cr_assert_eq(bdr_trust_snapshot(&cfg, &snap), 0);
	bdr_config_free(&cfg);

	cr_assert_eq(bdr_trust_peer(&snap, "hq", "app", &t, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(bdr_trust_expected(&t, NULL, "app", key, why, sizeof(why)), 0);
	cr_assert_arr_eq(key, pk[HQ], BDR_PK_LEN);
	cr_assert_eq(bdr_trust_peer(&snap, "rogue", "app", &t, why, sizeof(why)), -BDR_EKEY);
	cr_assert_eq(bdr_trust_peer(&snap, "rogue", "lib", &t, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(bdr_trust_expected(&t, NULL, "lib", key, why, sizeof(why)), 0);
	cr_assert_arr_eq(key, pk[ROGUE], BDR_PK_LEN);
	cr_assert_eq(bdr_trust_expected(&t, &hq, "lib", key, why, sizeof(why)), -BDR_EKEY);
	cr_assert(strstr(why, "package lib belongs to origin hq"), "%s", why);
	cr_assert_eq(bdr_trust_peer(&snap, "region", "lib", &t, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(bdr_trust_expected(&t, NULL, "lib", key, why, sizeof(why)), 1, "any key");
	cr_assert_eq(bdr_trust_expected(&t, &hq, "lib", key, why, sizeof(why)), 0);
	cr_assert_arr_eq(key, pk[HQ], BDR_PK_LEN);
	bdr_config_free(&snap);
}
