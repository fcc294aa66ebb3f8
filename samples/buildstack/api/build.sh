#!/bin/sh
# The api's "compiler": each src/NAME.cgi.in becomes the CGI script OUT/cgi-bin/NAME: a shebang,
# lib/prologue.sh, then the source without its comment lines and with @VERSION@ (the build
# argument API_VERSION) and @ROUTE@ filled in. OUT/index.html lists the routes it made.
set -eu
out=${1:?usage: build.sh OUT}
version=${API_VERSION:-dev}
mkdir -p "$out/cgi-bin"
routes=""
for source in src/*.cgi.in; do
    name=$(basename "$source" .cgi.in)
    {
        echo '#!/bin/sh'
        echo "# Made by build.sh from $source (api $version): do not edit."
        sed -e '/^#/d' lib/prologue.sh
        sed -e '/^#/d' -e "s/@VERSION@/$version/g" -e "s/@ROUTE@/$name/g" "$source"
    } >"$out/cgi-bin/$name"
    chmod 755 "$out/cgi-bin/$name"
    routes="$routes<li><a href=\"/cgi-bin/$name\">/cgi-bin/$name</a></li>"
    echo "build.sh: cgi-bin/$name"
done
printf '<!doctype html>\n<html><head><title>api %s</title></head>\n<body><ul>%s</ul></body></html>\n' \
    "$version" "$routes" >"$out/index.html"
