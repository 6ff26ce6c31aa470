#!/bin/bash
# Passphrase strength: init and passwd score a new passphrase with libpwquality. At a terminal a weak
# one is refused with the library's reason (one line) and asked again; from --passphrase-fd or
# AKCTL_ASKPASS it is taken with a warning. akctl's read commands never load the library.
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

PTY=("$PY" "$TESTS_DIR/pty_run.py")
# Fixed, not random: cracklib calls some random strings "systematic", and a test must not depend on luck.
STRONG="Quill-7f3e9a-Harbor-Vexed"
STRONG2="Fjord-Lantern-Quill-9b2c7d"
export AKCTL

# opens CODE KEYSTORE PASSPHRASE: unlocking an agent on KEYSTORE with PASSPHRASE exits CODE.
opens() {
	expect_exit "$1" "$AKAGENT" -a "$T/opens.sock" -f "$2" \
		sh -c '"$AKCTL" -f "$0" --passphrase-fd 3 unlock' "$2" 3<<<"$3"
}

trace "the library is there (the runtime package libpwquality1)"
/usr/bin/python3 -c 'import ctypes; ctypes.CDLL("libpwquality.so.1")' ||
	fail "libpwquality.so.1 cannot be loaded: install libpwquality1"

trace "from --passphrase-fd a weak passphrase is taken, with the library's reason"
expect_exit 0 "$AKCTL" --passphrase-fd 3 -f "$T/ks-fd" init --kdf insecure-test 3<<<"abc"
[ -s "$T/ks-fd" ] || fail "init --passphrase-fd with a weak passphrase wrote no keystore"
grep -q "^akctl: warning: weak passphrase: The password is shorter than" "$ERR" ||
	fail "init --passphrase-fd: no warning naming the reason"
assert_eq "$(grep -c 'weak passphrase' "$ERR")" 1 "warning lines"
opens 0 "$T/ks-fd" "abc"

trace "a strong passphrase gets no warning"
expect_exit 0 "$AKCTL" --passphrase-fd 3 -f "$T/ks-ok" init --kdf insecure-test 3<<<"$STRONG"
grep -q "weak passphrase\|not checked" "$ERR" && fail "init with a strong passphrase warned"

trace "from AKCTL_ASKPASS: a warning too"
printf '#!/bin/sh\necho password\n' > "$T/askpass-weak"
chmod 0755 "$T/askpass-weak"
expect_exit 0 env AKCTL_ASKPASS="$T/askpass-weak" "$AKCTL" -f "$T/ks-ask" init --kdf insecure-test
grep -q "^akctl: warning: weak passphrase: The password fails the dictionary check" "$ERR" ||
	fail "init from askpass: no dictionary warning"

trace "passwd --passphrase-fd: the new one is scored, the old one is not"
printf 'abc\nsecret\n' > "$T/pw"
expect_exit 0 "$AKCTL" --passphrase-fd 3 -f "$T/ks-fd" passwd 3<"$T/pw"
assert_eq "$(grep -c 'weak passphrase' "$ERR")" 1 "passwd warning lines"
opens 6 "$T/ks-fd" "abc"
opens 0 "$T/ks-fd" "secret"

trace "at a terminal a weak passphrase is refused with the reason, then a strong one is taken"
expect_exit 0 "${PTY[@]}" --expect "New passphrase" --send "abc" \
	--expect "New passphrase" --send "$STRONG" --expect "Repeat" --send "$STRONG" -- \
	env -u AKCTL_ASKPASS "$AKCTL" -f "$T/ks-tty" init --kdf insecure-test
grep -q "^akctl: passphrase refused: The password is shorter than [0-9]* characters; choose another" \
	"$OUT" || fail "init at a terminal: no refusal with the reason"
[ -s "$T/ks-tty" ] || fail "init at a terminal wrote no keystore after a strong passphrase"
opens 0 "$T/ks-tty" "$STRONG"

trace "three weak ones at a terminal: nothing written, exit 1, the reason on one line"
expect_exit 1 "${PTY[@]}" --expect "New passphrase" --send "abc" --expect "New passphrase" --send "password" \
	--expect "New passphrase" --send "12345" -- \
	env -u AKCTL_ASKPASS "$AKCTL" -f "$T/ks-none" init --kdf insecure-test
[ -e "$T/ks-none" ] && fail "init wrote a keystore after three weak passphrases"
grep -q "^akctl: init: passphrase: passphrase too weak (The password is shorter than" "$OUT" ||
	fail "init: the final error does not give the reason"
grep -q "Repeat" "$OUT" && fail "a weak passphrase was asked to be repeated"

trace "the warning stays one line, with no control byte, whatever the passphrase holds"
expect_exit 0 "$AKCTL" --passphrase-fd 3 -f "$T/ks-ctl" init --kdf insecure-test 3<<<$'a\x1b[2Jb'
assert_eq "$(grep -c '' "$ERR")" 2 "stderr lines (insecure-test note, one warning)"
grep -q $'\x1b' "$ERR" && fail "an escape byte reached the terminal"

trace "passwd at a terminal: a weak new passphrase is refused, the old one still opens the store"
expect_exit 1 "${PTY[@]}" --expect "Old passphrase" --send "$STRONG" \
	--expect "New passphrase" --send "abc" --expect "New passphrase" --send "qwerty" \
	--expect "New passphrase" --send "aaaaaaaaaaaa" -- \
	env -u AKCTL_ASKPASS "$AKCTL" -f "$T/ks-ok" passwd
grep -q "passphrase too weak" "$OUT" || fail "passwd: no refusal"
opens 0 "$T/ks-ok" "$STRONG"
expect_exit 0 "${PTY[@]}" --expect "Old passphrase" --send "$STRONG" \
	--expect "New passphrase" --send "$STRONG2" --expect "Repeat" --send "$STRONG2" -- \
	env -u AKCTL_ASKPASS "$AKCTL" -f "$T/ks-ok" passwd
opens 0 "$T/ks-ok" "$STRONG2"

trace "without cracklib's dictionary the rest is still checked, with a warning"
# cracklib-runtime (the dictionary) is only recommended by libcrack2: hide it in a private mount
# namespace. Without user namespaces this part cannot run; it says so.
mkdir -p "$T/empty"
if unshare -rm true 2>/dev/null; then
	# shellcheck disable=SC2016  # expanded by the inner shell
	expect_exit 0 unshare -rm sh -c 'mount --bind "$0" /var/cache/cracklib && "$AKCTL" --passphrase-fd 3 \
		-f "$1" init --kdf insecure-test 3<<EOP
$2
EOP' "$T/empty" "$T/ks-nodict" "$STRONG"
	grep -q "warning: no cracklib dictionary" "$ERR" || fail "no warning about the missing dictionary"
	grep -q "weak passphrase\|No such file" "$ERR" && fail "a missing dictionary made a strong passphrase weak"
	expect_exit 0 unshare -rm sh -c 'mount --bind "$0" /var/cache/cracklib && "$AKCTL" --passphrase-fd 3 \
		-f "$1" init --kdf insecure-test 3<<EOP
abc
EOP' "$T/empty" "$T/ks-nodict2"
	grep -q "weak passphrase: The password is shorter than" "$ERR" || fail "without the dictionary: length not checked"
else
	echo "NOTE: no user namespaces here: the missing-dictionary case was not run" >&2
fi

trace "read commands never load libpwquality or libcrack"
init_store
start_agent
unlock
add_profile p1 "$(fake_key)"
expect_exit 0 env LD_DEBUG=libs "$AKCTL" get p1
grep -q "pwquality\|libcrack" "$ERR" && fail "akctl get loaded libpwquality or libcrack"
expect_exit 0 env LD_DEBUG=libs "$AKCTL" env p1
grep -q "pwquality\|libcrack" "$ERR" && fail "akctl env loaded libpwquality or libcrack"
expect_exit 0 env LD_DEBUG=libs "$AKCTL" exec p1 -- true
grep -q "pwquality\|libcrack" "$ERR" && fail "akctl exec loaded libpwquality or libcrack"
expect_exit 0 env LD_DEBUG=libs "$AKCTL" --passphrase-fd 3 -f "$T/ks-x" init --kdf insecure-test 3<<<"$STRONG"
grep -q "pwquality" "$ERR" || fail "init did not load libpwquality (the check is not running)"
exit 0
