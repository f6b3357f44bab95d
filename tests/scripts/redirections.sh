# Redirections, here-documents, command substitution in loops.
exec 2>&1
cat <<END | tr a-z A-Z
here document line
END
echo to stderr 1>&2 2>/dev/null; echo "stderr redirected: $?"
{ echo grouped; echo output; } > /tmp/group.txt
wc -l < /tmp/group.txt
total=0
for n in $(seq 1 10); do total=$((total + n)); done
echo "sum $total"
echo "nested $(echo "$(echo inner | rev)")"
exec 3> /tmp/fd3.txt; echo via fd 3 >&3; exec 3>&-; cat /tmp/fd3.txt
ls /tmp/group.txt /tmp/nonexistent 2>&1 | sort
rm -f /tmp/group.txt /tmp/fd3.txt
printf '%s\n' c a b | sort | uniq -c | sed 's/^ *//'
