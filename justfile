# autoexpose recipes. Nothing here is required: each is a plain command underneath.

# list the recipes
default:
    @just --list

# run the tests (what CI runs first, there through cargo insta: see snap-check)
test:
    cargo test --locked

# the demo: recorded Tableau site, no network
demo:
    cargo run --release -- run --config examples/demo/autoexpose.yml

# one stage of the demo (extract, normalize, match, emit, run)
stage STAGE:
    cargo run --release -- {{STAGE}} --config examples/demo/autoexpose.yml

# review snapshot changes (needs cargo-insta; CI's copy in .tools/ is used when there)
snap:
    PATH="$PWD/.tools/bin:$PATH" cargo insta review

# the tests as CI runs them: fail on a changed snapshot and on a .snap file no test asserts
snap-check:
    cargo test --locked --no-run
    PATH="$PWD/.tools/bin:$PATH" cargo insta test --check --unreferenced reject

# re-record the demo site from testdata/tableau/demo.site.json
record:
    scripts/record-demo.sh

# open the demo's SQLite file
db:
    sqlite3 -header -column examples/demo/autoexpose.db

# rebuild the demo dbt project and its committed manifest.json / run_results.json
dbt-demo:
    scripts/dbt-venv.sh
    scripts/build-demo-dbt.sh

# the dbt round trip: autoexpose output judged by a real dbt parse (needs PyPI for the venv)
roundtrip:
    bash scripts/roundtrip.sh

# what CI runs
ci:
    bash .ci/run

# benchmarks S (demo), M and L (generated, ~700 MB under target/bench) into BENCHMARKS.md
bench:
    cargo run --release --example bench

# benchmarks S and M only, into target/bench/BENCHMARKS-quick.md (leaves BENCHMARKS.md alone)
bench-quick:
    cargo run --release --example bench -- --sizes S,M --out target/bench/BENCHMARKS-quick.md

# M once, no live runs: custom SQL lineage scored against the generated truth (fails below the
# issue #13 targets) and the Power BI tenant, into target/bench/BENCHMARKS-score.md
bench-score:
    cargo run --release --example bench -- --sizes M --live "" --runs 1 --out target/bench/BENCHMARKS-score.md
