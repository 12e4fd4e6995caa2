#!/bin/sh
# The message catalogs (surveillance/locale): extract the strings of the templates and the
# Python code into messages.pot, merge them into each language's messages.po, and compile
# the .mo files the application reads (committed: the app has no build step).
#   scripts/catalogs.sh update    after adding or changing a string (then translate the .po)
#   scripts/catalogs.sh compile   after translating
set -eu
cd "$(dirname "$0")/.."
PYBABEL="${PYBABEL:-pybabel}"
LOCALE_DIR=surveillance/locale
case "${1:-}" in
update)
    "$PYBABEL" extract -F babel.cfg --no-wrap --sort-by-file --add-location=file \
        --project="LTFU surveillance" --copyright-holder="LTFU surveillance contributors" \
        -o "$LOCALE_DIR/messages.pot" .
    for lang in it de; do
        if [ -f "$LOCALE_DIR/$lang/LC_MESSAGES/messages.po" ]; then
            "$PYBABEL" update --no-wrap --ignore-obsolete -i "$LOCALE_DIR/messages.pot" \
                -d "$LOCALE_DIR" -l "$lang"
        else
            "$PYBABEL" init -i "$LOCALE_DIR/messages.pot" -d "$LOCALE_DIR" -l "$lang"
        fi
    done
    ;;
compile)
    "$PYBABEL" compile --statistics -d "$LOCALE_DIR"
    ;;
*)
    echo "usage: scripts/catalogs.sh update|compile" >&2
    exit 2
    ;;
esac
