# Shared by every route (build.sh puts it at the top of each script).
# reply [TYPE]: the CGI header, JSON unless TYPE says otherwise.
reply() { printf 'Content-Type: %s\r\n\r\n' "${1:-application/json}"; }
