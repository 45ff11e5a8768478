/*
 * The one-pass producer of an all-stored archive, for uploads without a temporary file.
 * Its exact size is known before the first byte; it emits the very bytes zw_add would
 * write for the same plan with every entry stored.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32x.h"
#include "zipwrite.h"

/*
 * CRCs go into the local headers, found by a checksum pass over each file just before
 * its header is sent, rather than into data descriptors after the data: a stored entry
 * with a data descriptor cannot be extracted by a reader that works from the front of
 * the stream (it cannot find where the data ends), and some refuse it outright. The pass
 * reads the file from the page cache the second time; the data are checked against the
 * CRC again while they are sent, so a file changed in between fails the read.
 */

enum { P_LOCAL, P_DATA, P_CENTRAL, P_END, P_DONE };

#define CRCBUF (1u << 20)

struct zs_stream {
  zw_item *items;
  zf_entry *e;
  unsigned char *crc_known;
  size_t n;
  uint64_t size, cd_offset, cd_size;
  int phase;
  size_t idx;
  unsigned char rec[ZF_HEADER_SLACK + 0x10000];
  size_t reclen, recpos;
  int fd;
  uint64_t datapos;
  uint32_t crc;
  unsigned char *crcbuf;
};

void zs_free(zs_stream *s) {
  size_t i;
  if (s == NULL)
    return;
  if (s->fd >= 0)
    close(s->fd);
  for (i = 0; i < s->n; i++) {
    free(s->items[i].src);
    free(s->items[i].name);
  }
  free(s->items);
  free(s->e);
  free(s->crc_known);
  free(s->crcbuf);
  free(s);
}

zs_stream *zs_new(const zw_plan *plan, int64_t mtime, zerr *err) {
  zs_stream *s = calloc(1, sizeof *s);
  uint16_t dt, dd;
  uint64_t off = 0;
  size_t i;
  if (s == NULL)
    goto oom;
  s->fd = -1;
  s->n = plan->n;
  s->items = calloc(plan->n ? plan->n : 1, sizeof *s->items);
  s->e = calloc(plan->n ? plan->n : 1, sizeof *s->e);
  s->crc_known = calloc(plan->n ? plan->n : 1, 1);
  s->crcbuf = malloc(CRCBUF);
  if (s->items == NULL || s->e == NULL || s->crc_known == NULL || s->crcbuf == NULL)
    goto oom;
  zf_dostime(mtime >= 0 ? mtime : zf_default_epoch(), &dt, &dd);
  for (i = 0; i < plan->n; i++) {
    zw_item *it = &s->items[i];
    zf_entry *e = &s->e[i];
    *it = plan->items[i];
    it->src = it->src ? strdup(it->src) : NULL;
    it->name = strdup(plan->items[i].name);
    if ((plan->items[i].src && it->src == NULL) || it->name == NULL)
      goto oom;
    e->name = it->name;
    e->namelen = it->namelen;
    e->method = ZF_STORE;
    e->dostime = dt;
    e->dosdate = dd;
    e->mode = it->mode;
    e->usize = e->csize = it->size;
    e->offset = off;
    e->zip64_local = zf_needs_zip64_local(ZF_STORE, it->size);
    e->crc = 0;
    s->crc_known[i] = it->src == NULL || it->size == 0;
    off += zf_local_size(e) + it->size;
  }
  s->cd_offset = off;
  for (i = 0; i < plan->n; i++)
    off += zf_central_size(&s->e[i]);
  s->cd_size = off - s->cd_offset;
  s->size = off + zf_end_size(plan->n, s->cd_offset, s->cd_size);
  return s;
oom:
  zerr_set(err, "NOMEM", "out of memory");
  zs_free(s);
  return NULL;
}

uint64_t zs_size(const zs_stream *s) { return s->size; }

int zs_reset(zs_stream *s, zerr *err) {
  (void)err;
  if (s->fd >= 0)
    close(s->fd);
  s->fd = -1;
  s->phase = P_LOCAL;
  s->idx = 0;
  s->reclen = s->recpos = 0;
  return 0;
}

static int open_checked(zs_stream *s, const zw_item *it, zerr *err) {
  struct stat st;
  int fd = open(it->src, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    zerr_set(err, "IO", "cannot read %s: %s", it->src, strerror(errno));
    return -1;
  }
  if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != it->size) {
    zerr_set(err, "IO", "%s changed while being archived", it->src);
    close(fd);
    return -1;
  }
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  (void)s;
  return fd;
}

static int crc_pass(zs_stream *s, size_t i, zerr *err) {
  const zw_item *it = &s->items[i];
  uint64_t total = 0;
  uint32_t crc = 0;
  int fd = open_checked(s, it, err);
  if (fd < 0)
    return -1;
  for (;;) {
    ssize_t r = read(fd, s->crcbuf, CRCBUF);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      zerr_set(err, "IO", "cannot read %s: %s", it->src, strerror(errno));
      close(fd);
      return -1;
    }
    if (r == 0)
      break;
    crc = zcrc32(crc, s->crcbuf, (size_t)r);
    total += (uint64_t)r;
  }
  close(fd);
  if (total != it->size) {
    zerr_set(err, "IO", "%s changed while being archived", it->src);
    return -1;
  }
  s->e[i].crc = crc;
  s->crc_known[i] = 1;
  return 0;
}

/* Moves to the next record or data piece; returns -1 on failure. */
static int advance(zs_stream *s, zerr *err) {
  switch (s->phase) {
  case P_LOCAL:
    if (s->idx == s->n) {
      s->phase = P_CENTRAL;
      s->idx = 0;
      return 0;
    }
    if (!s->crc_known[s->idx] && crc_pass(s, s->idx, err) != 0)
      return -1;
    s->reclen = zf_local(s->rec, &s->e[s->idx]);
    s->recpos = 0;
    if (s->items[s->idx].size > 0) {
      s->fd = open_checked(s, &s->items[s->idx], err);
      if (s->fd < 0)
        return -1;
      s->phase = P_DATA;
      s->datapos = 0;
      s->crc = 0;
    } else {
      s->idx++;
    }
    return 0;
  case P_DATA: /* the data were sent in full (checked by the caller) */
    close(s->fd);
    s->fd = -1;
    if (s->crc != s->e[s->idx].crc) {
      zerr_set(err, "IO", "%s changed while being archived", s->items[s->idx].src);
      return -1;
    }
    s->idx++;
    s->phase = P_LOCAL;
    return 0;
  case P_CENTRAL:
    if (s->idx == s->n) {
      s->reclen = zf_end(s->rec, s->n, s->cd_offset, s->cd_size);
      s->recpos = 0;
      s->phase = P_END;
      return 0;
    }
    s->reclen = zf_central(s->rec, &s->e[s->idx++]);
    s->recpos = 0;
    return 0;
  default:
    s->phase = P_DONE;
    return 0;
  }
}

size_t zs_read(zs_stream *s, unsigned char *buf, size_t n, zerr *err) {
  size_t got = 0;
  while (got < n && s->phase != P_DONE) {
    if (s->recpos < s->reclen) {
      size_t k = s->reclen - s->recpos;
      if (k > n - got)
        k = n - got;
      memcpy(buf + got, s->rec + s->recpos, k);
      s->recpos += k;
      got += k;
      continue;
    }
    if (s->phase == P_DATA && s->datapos < s->items[s->idx].size) {
      uint64_t left = s->items[s->idx].size - s->datapos;
      size_t want = left < (uint64_t)(n - got) ? (size_t)left : n - got;
      ssize_t r = read(s->fd, buf + got, want);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0) {
        zerr_set(err, "IO", "cannot read %s: %s", s->items[s->idx].src,
                 r < 0 ? strerror(errno) : "it changed while being archived");
        return (size_t)-1;
      }
      s->crc = zcrc32(s->crc, buf + got, (size_t)r);
      s->datapos += (uint64_t)r;
      got += (size_t)r;
      continue;
    }
    if (advance(s, err) != 0)
      return (size_t)-1;
  }
  return got;
}
