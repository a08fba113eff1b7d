# make install / make uninstall: husk, its man page and its shell completions
# where a distribution looks for them. Included by the top Makefile, which
# defines "release" (builds $(HUSK)).
#   make release && make install                 (as root) under /usr/local
#   make install DESTDIR=/tmp/pkg PREFIX=/usr     a package's tree
#   make install HUSK=/path/to/husk               install that binary, build nothing
#   make uninstall [DESTDIR=...] [PREFIX=...]     removes the five files install put
#   make test-install                             the check (part of make test)
#
# Installed (PREFIX /usr/local by default):
#   bin/husk                                          mode 755
#   share/man/man8/husk.8.gz                          section 8 like runc's pages
#   share/bash-completion/completions/husk            bash-completion loads it on demand
#   share/zsh/site-functions/_husk                    (PREFIX /usr: share/zsh/vendor-completions)
#   share/fish/vendor_completions.d/husk.fish
# The man page and the completions are generated at install time by the
# binary being installed (husk man, husk completion SHELL), so they always
# describe its command line. The man page is gzipped (gzip -9n, reproducible)
# under every PREFIX: Debian compresses every page it ships (runc's are
# runc.8.gz), man-db reads .gz pages in /usr/local as well, and one rule
# keeps install and uninstall symmetric. husk-recvtty is not installed: like
# runc's recvtty (contrib/, installed neither by runc nor by Debian's runc)
# it is a test tool for --console-socket.

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
BASH_COMPLETION_DIR ?= $(PREFIX)/share/bash-completion/completions
# Debian's zsh reads /usr/local/share/zsh/site-functions (zsh's own default
# site directory) and, for packages, /usr/share/zsh/vendor-completions; it
# does not read /usr/local/share/zsh/vendor-completions. Elsewhere zsh reads
# $prefix/share/zsh/site-functions.
ZSH_COMPLETION_DIR ?= $(PREFIX)/share/zsh/$(if $(filter /usr,$(PREFIX)),vendor-completions,site-functions)
# fish reads /usr/share/fish/vendor_completions.d always, and
# /usr/local/share/fish/vendor_completions.d when XDG_DATA_DIRS names
# /usr/local/share (systemd user sessions set it; a bare ssh login may not).
FISH_COMPLETION_DIR ?= $(PREFIX)/share/fish/vendor_completions.d

INSTALLED_FILES = $(DESTDIR)$(BINDIR)/husk \
  $(DESTDIR)$(MANDIR)/man8/husk.8.gz \
  $(DESTDIR)$(BASH_COMPLETION_DIR)/husk \
  $(DESTDIR)$(ZSH_COMPLETION_DIR)/_husk \
  $(DESTDIR)$(FISH_COMPLETION_DIR)/husk.fish

.PHONY: install uninstall test-install

# HUSK given on the command line (make install HUSK=...): install that
# binary as it is; otherwise build the release binary first (a no-op when
# it is up to date).
install: $(if $(filter command line,$(origin HUSK)),,release)
	@set -euo pipefail; \
	[ -x "$(HUSK)" ] || { echo "install: no husk binary at $(HUSK) (make release)" >&2; exit 1; }; \
	gen=$$(mktemp -d); trap 'rm -rf "$$gen"' EXIT; \
	"$(HUSK)" man | gzip -9n >"$$gen/husk.8.gz"; \
	for sh in bash zsh fish; do "$(HUSK)" completion $$sh >"$$gen/$$sh"; done; \
	set -x; \
	install -D -m 755 "$(HUSK)" "$(DESTDIR)$(BINDIR)/husk"; \
	install -D -m 644 "$$gen/husk.8.gz" "$(DESTDIR)$(MANDIR)/man8/husk.8.gz"; \
	install -D -m 644 "$$gen/bash" "$(DESTDIR)$(BASH_COMPLETION_DIR)/husk"; \
	install -D -m 644 "$$gen/zsh" "$(DESTDIR)$(ZSH_COMPLETION_DIR)/_husk"; \
	install -D -m 644 "$$gen/fish" "$(DESTDIR)$(FISH_COMPLETION_DIR)/husk.fish"

# Removes the files install put, nothing else: the directories stay (they
# may have been there before, and other packages' files live in them).
uninstall:
	rm -f $(INSTALLED_FILES)

## test-install: make install into a temporary DESTDIR with PREFIX=/usr and
## /usr/local, check every file, then make uninstall leaves no file behind
test-install: release
	integration/install/check.sh "$(HUSK)"
