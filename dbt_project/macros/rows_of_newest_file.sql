{#-
  Rows of a raw table as the newest file (vintage) published them, period by period.

  A publisher re-issues a period's figures in every later file that covers it (CBP's rolling
  four-fiscal-year windows, SEGOB's year-to-date workbooks, HHS's fiscal-year pages). For each
  period the newest file carrying it wins *as a whole*: its rows for that period are taken and
  every older file's rows for it are left out. Choosing file by period rather than figure by
  figure means a row a newer file dropped (a figure revised away) is not kept alive from an
  older file, and every figure of a period comes from one file.

  Ties (two files of the same vintage) go to the greater sha256: arbitrary but stable.

  Adds, per period:
    vintages_with_period      how many files (vintages) in the warehouse carry the period;
    first_published_vintage   the oldest of those vintages: when the period was first seen.

  period: a SQL expression over the raw columns (`month`, `year(repatriation_date)`).
-#}
{% macro rows_of_newest_file(relation, period) -%}
(
    with raw_rows as (

        select *, {{ period }} as _period from {{ relation }}

    ),

    files_by_period as (

        select _period, source_file, max(vintage) as file_vintage
        from raw_rows
        group by _period, source_file

    ),

    ranked_files as (

        select
            _period,
            source_file,
            row_number() over (
                partition by _period order by file_vintage desc, source_file desc
            ) as file_rank,
            count(*) over (partition by _period) as vintages_with_period,
            min(file_vintage) over (partition by _period) as first_published_vintage
        from files_by_period

    )

    select
        raw_rows.* exclude (_period),
        ranked_files.vintages_with_period,
        ranked_files.first_published_vintage
    from raw_rows
    inner join ranked_files
        on raw_rows._period = ranked_files._period
        and raw_rows.source_file = ranked_files.source_file
    where ranked_files.file_rank = 1
)
{%- endmacro %}
