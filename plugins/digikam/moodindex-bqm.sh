#!/bin/sh
# moodindex-bqm.sh - digiKam Batch Queue Manager "User Shell Script" step:
# analyse the faces in INPUT, copy INPUT to OUTPUT and embed Emotion tags in OUTPUT
# (XMP lr:hierarchicalSubject, digiKam:TagsList, MicrosoftPhoto:LastKeywordXMP, dc:subject,
# and IPTC Keywords for JPEG/TIFF).
#
# In digiKam: Tools > Batch Queue Manager > Base Tools > Custom Tools > "User Shell Script",
# Output Image Type "Same as input", and as the script text one line:
#
#     /path/to/moodindex-bqm.sh "$INPUT" "$OUTPUT"
#
# Usage outside digiKam:  moodindex-bqm.sh INPUT OUTPUT
# Environment: MOODINDEX (the moodindex program, default: the one that installed this script,
#              or moodindex on PATH for a copy made by hand),
#              MOODINDEX_MIN_SCORE (default: moodindex's own), MOODINDEX_PREFIX (default Emotion).
# Every name is passed as one quoted argument: file names are data, never shell code.
# OUTPUT is never written through: moodindex refuses a symbolic link there before copying.
set -eu

if [ "$#" -ne 2 ]; then
    echo "usage: $0 INPUT OUTPUT" >&2
    exit 2
fi
input=$1
output=$2
# An empty $OUTPUT would make moodindex copy INPUT into the working folder: refuse instead.
if [ -z "$input" ] || [ -z "$output" ]; then
    echo "$0: INPUT and OUTPUT must not be empty" >&2
    exit 2
fi
# `moodindex plugins install digikam` rewrites this one line with its own absolute path, quoted.
installed_moodindex=moodindex
moodindex=${MOODINDEX:-$installed_moodindex}

set -- tag-file --output "$output" --in-file --prefix "${MOODINDEX_PREFIX:-Emotion}"
if [ -n "${MOODINDEX_MIN_SCORE:-}" ]; then
    set -- "$@" --min-score "$MOODINDEX_MIN_SCORE"
fi
# "--" ends the options: an INPUT whose name starts with "-" is still a file name.
exec "$moodindex" "$@" -- "$input"
