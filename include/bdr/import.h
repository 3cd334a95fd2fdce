/* Import (sending site): snapshot a source directory as the next version of
 * a package: walk, chunk, hash, copy into the library, sign the manifest.
 *
 * A quick-check cache (path, size, mtime, ctime, inode, device) lets files
 * unchanged since the last import skip the read: they are hardlinked from
 * the previous version with its chunk list. A file that changes while it
 * is read (size or times differ before and after) is read again, up to
 * BDR_IMPORT_RETRIES times, then the import fails with -BDR_ECHANGED
 * naming it: never a torn version. */
#ifndef BDR_IMPORT_H
#define BDR_IMPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "bdr/access.h"
#include "bdr/key.h"

struct bdr_library;
struct bdr_diag;

#define BDR_IMPORT_RETRIES 3

struct bdr_import_stats {
	uint64_t entries;
	uint64_t files;
	uint64_t bytes;       /* total file bytes in the version */
	uint64_t files_read;  /* files read and chunked */
	uint64_t bytes_read;
	uint64_t files_quick; /* files taken from the quick-check cache */
	uint64_t retries;     /* re-reads after a file changed under us */
	bool unchanged;       /* the tree is the latest version, entry for entry:
			       * no version was made, *version names that one */
};

/* Which files of the source are taken as the previous version's without
 * being read (see quick_match in import.c). */
enum bdr_quick_check {
	BDR_QC_MTIME = 0, /* size, mode and mtime as in the previous version's
			   * manifest (rsync's rule), or the strict match */
	BDR_QC_STRICT,    /* size, mtime, ctime, inode and device as recorded
			   * when the previous version was imported */
};

struct bdr_import_req {
	const char *package;
	const char *srcdir;         /* the tree; NULL: srcdir_fd */
	int srcdir_fd;              /* with srcdir NULL: the tree, open (borrowed;
				     * read from a descriptor of its own) */
	/* NULL: the tree is read with this process's rights. Else the
	 * import is on behalf of another user: it fails with -EACCES at the
	 * first entry as could not read (a directory it could not list or
	 * enter, a file it could not read); symlinks are never followed. */
	const struct bdr_cred *as;
	const char *site;           /* creating site's name */
	const struct bdr_key *key;  /* signs the manifest */
	int64_t created_ns;         /* 0: now */
	/* Files whose mtime or ctime lies within this window before the import
	 * began are not put in the quick-check cache: a write in the same
	 * coarse clock tick as our read could leave size and times unchanged
	 * (git's "racily clean" problem). 0: BDR_IMPORT_RACY_NS; < 0: none. */
	int64_t racy_window_ns;
	enum bdr_quick_check quick_check;
};

#define BDR_IMPORT_RACY_NS 2000000000ll

/* The new version number is the latest held + 1; or, when the tree is the
 * latest version entry for entry (content, modes, times), no version is
 * made and *version is that one (st->unchanged). */
int bdr_import(struct bdr_library *lib, const struct bdr_import_req *req, uint64_t *version,
	       struct bdr_import_stats *st, struct bdr_diag *d);

#endif
