#!/bin/sh
# Default on_record_hook_script: runs after each finished file.
# $1 = stream name, $2 = absolute path of the file in record_dir. Arguments are passed without a shell.
echo "recorded stream=[$1] file=[$2] bytes=$(stat -c %s "$2" 2>/dev/null || echo '?')"
