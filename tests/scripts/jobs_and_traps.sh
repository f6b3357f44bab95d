# Background jobs, wait, exit statuses and traps.
exec 2>&1
(exit 5) & wait $!; echo "background job status $?"
for i in 1 2 3; do (echo "job $i") > /tmp/job$i.out & done
wait
cat /tmp/job1.out /tmp/job2.out /tmp/job3.out
rm -f /tmp/job1.out /tmp/job2.out /tmp/job3.out
trap 'echo got USR1' USR1
kill -USR1 $$
echo "after the trap"
sh -c 'exit 7'; echo "nested shell status $?"
if false; then echo no; else echo "if/else works"; fi
f() { echo "function got $#: $*"; return 2; }; f a b; echo "function status $?"
trap 'echo leaving' EXIT
