echo one two three | tr ' ' '\n' | sort -r | head -n 2
exec 2>&1
x=$(echo sub | tr a-z A-Z); echo "captured $x"
(echo in a subshell; exit 3); echo "subshell status $?"
printf 'b\na\nc\n' > /tmp/lines.txt; sort < /tmp/lines.txt | tr '\n' ' '; echo
sleep 0 & wait $!; echo "waited $?"
trap 'echo trapped EXIT' EXIT
false | true; echo "pipeline status $?"
seq 1 200 | grep 7 | wc -l
