/* One error convention: every code has a name, and diag_set returns the
 * code it records so error paths stay one line. */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "bdr/error.h"

Test(error, every_bdr_code_and_errno_has_a_name)
{
	for (int e = BDR_E_FIRST + 1; e < BDR_E_LAST; e++)
		cr_assert_str_neq(bdr_strerror(-e), "unknown error", "code %d has no name", e);
	cr_assert_str_eq(bdr_strerror(-ENOENT), strerror(ENOENT));
	cr_assert_str_eq(bdr_strerror(-BDR_E_LAST), "unknown error");
	cr_assert_str_eq(bdr_strerror(-BDR_ESIG), bdr_strerror(BDR_ESIG));
}

Test(error, diag_records_the_message_and_returns_the_code)
{
	struct bdr_diag d;

	cr_assert_eq(bdr_diag_set(&d, -BDR_EPATH, "entry '%s': %s", "a/../b", "contains '..'"), -BDR_EPATH);
	cr_assert_str_eq(d.msg, "entry 'a/../b': contains '..'");
	cr_assert_eq(bdr_diag_set(NULL, -EIO, "ignored"), -EIO);
}
