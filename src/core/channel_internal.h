/* Internal channel entry points for tests only; nothing in the daemon may
 * use them. The wiping of secrets cannot be observed through the public
 * API, so the tests ask the channel directly. */
#ifndef BDR_CHANNEL_INTERNAL_H
#define BDR_CHANNEL_INTERNAL_H

#include <stdbool.h>

struct bdr_channel;

/* Whether the channel's copy of the long-term key is all zero. */
bool bdr__channel_key_wiped(const struct bdr_channel *c);
/* Whether the ephemeral secret key and both session keys are all zero. */
bool bdr__channel_session_secrets_wiped(const struct bdr_channel *c);

#endif
