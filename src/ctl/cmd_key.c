/* keygen and pubkey: local key files, no daemon. */
#include <errno.h>
#include <string.h>

#include "bdr/error.h"
#include "bdr/key.h"
#include "ctl.h"

static void print_pk(const struct ctl_args *a, const struct bdr_key *k)
{
	char b64[BDR_KEY_B64_LEN + 1];

	bdr_key_pk_to_b64(k->pk, b64);
	if (a->json) {
		json_t *o = json_pack("{s:s}", "public_key", b64);

		ctl_print_json(o);
		json_decref(o);
	} else {
		printf("%s\n", b64);
	}
}

int ctl_keygen(const struct ctl_args *a)
{
	const char *path = a->out ? a->out : CTL_KEY_DEFAULT;
	struct bdr_key k;
	int r;

	bdr_key_generate(&k);
	r = bdr_key_save(&k, path);
	if (r == -EEXIST) {
		fprintf(stderr, "bdrctl: %s already exists; not overwriting it\n", path);
	} else if (r < 0) {
		fprintf(stderr, "bdrctl: cannot write %s: %s\n", path, bdr_strerror(r));
	} else {
		print_pk(a, &k);
		fprintf(stderr, "bdrctl: wrote the private key to %s (mode 0600)\n", path);
	}
	bdr_key_wipe(&k);
	return r < 0 ? BDR_EXIT_FAILED : BDR_EXIT_OK;
}

int ctl_pubkey(const struct ctl_args *a)
{
	const char *path = a->key ? a->key : CTL_KEY_DEFAULT;
	struct bdr_diag d = { { 0 } };
	struct bdr_key k;
	int r = bdr_key_load(&k, path, &d);

	if (r < 0) {
		if (d.msg[0])
			fprintf(stderr, "bdrctl: %s\n", d.msg);
		else
			fprintf(stderr, "bdrctl: %s: %s\n", path, bdr_strerror(r));
		return BDR_EXIT_FAILED;
	}
	print_pk(a, &k);
	bdr_key_wipe(&k);
	return BDR_EXIT_OK;
}
