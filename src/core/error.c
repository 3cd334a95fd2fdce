#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bdr/error.h"

static const char *const bdr_errstr[] = {
	[BDR_EFORMAT - BDR_E_FIRST] = "malformed encoding",
	[BDR_ELIMIT - BDR_E_FIRST] = "limit exceeded",
	[BDR_ESIG - BDR_E_FIRST] = "bad signature",
	[BDR_EKEY - BDR_E_FIRST] = "untrusted or malformed key",
	[BDR_EPATH - BDR_E_FIRST] = "unsafe or invalid path",
	[BDR_EDUP - BDR_E_FIRST] = "duplicate entry",
	[BDR_EORDER - BDR_E_FIRST] = "entries out of canonical order",
	[BDR_EHASH - BDR_E_FIRST] = "content does not match its hash",
	[BDR_ECHANGED - BDR_E_FIRST] = "file changed while being read",
	[BDR_EDB - BDR_E_FIRST] = "database error",
	[BDR_EVERSION - BDR_E_FIRST] = "unsupported version",
	[BDR_ENOTFOUND - BDR_E_FIRST] = "not found",
	[BDR_ECORRUPT - BDR_E_FIRST] = "inconsistent or damaged state",
	[BDR_EMISSING - BDR_E_FIRST] = "chunk not available",
};

const char *bdr_strerror(int err)
{
	int e = err < 0 ? -err : err;

	if (e > BDR_E_FIRST && e < BDR_E_LAST && bdr_errstr[e - BDR_E_FIRST])
		return bdr_errstr[e - BDR_E_FIRST];
	if (e > 0 && e < BDR_E_FIRST)
		return strerror(e);
	return "unknown error";
}

int bdr_diag_set(struct bdr_diag *d, int err, const char *fmt, ...)
{
	va_list ap;

	if (d) {
		va_start(ap, fmt);
		vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
		va_end(ap);
	}
	return err;
}
