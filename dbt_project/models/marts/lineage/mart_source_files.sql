-- Which archived files every mart row comes from: one row per (mart, period, side, file), with
-- the file's URL, origin and vintage from raw.files. Built from the marts' own source_file /
-- *_source_files columns, so it cannot drift from them.

{% set list_columns = [
    ('mexico_uc_return_rate_monthly', 'cbp', 'cbp_source_files'),
    ('mexico_uc_return_rate_monthly', 'segob section 5', 'segob_source_files'),
    ('cbp_segob_discrepancy_monthly', 'cbp', 'cbp_source_files'),
    ('cbp_segob_discrepancy_monthly', 'segob section 5', 'segob_source_files'),
    ('inm_minor_returns_monthly', 'segob table 3.1.1', 'presented_source_files'),
    ('inm_minor_returns_monthly', 'segob table 3.1.3', 'minors_presented_source_files'),
    ('inm_minor_returns_monthly', 'segob table 3.2.4', 'returns_source_files'),
    ('hhs_vs_cbp_monthly', 'cbp', 'cbp_source_files'),
    ('hhs_vs_cbp_monthly', 'hhs daily', 'hhs_daily_source_files'),
    ('hhs_vs_cbp_monthly', 'hhs monthly pages', 'hhs_monthly_source_files'),
] %}

with used as (

    select distinct
        'cbp_uc_encounters_monthly' as mart,
        month as period,
        'month' as period_grain,
        'cbp' as side,
        source_file
    from {{ ref('cbp_uc_encounters_monthly') }}

    union all

    select distinct
        'hhs_uc_daily', report_date, 'day', 'hhs daily', source_file
    from {{ ref('hhs_uc_daily') }}

    {% for mart, side, column in list_columns %}
        union all

        select distinct
            '{{ mart }}', month, 'month', '{{ side }}', unnest({{ column }})
        from {{ ref(mart) }}
        where {{ column }} is not null
    {% endfor %}

),

files as (

    select * from {{ ref('stg_warehouse__files') }}

)

select
    used.mart,
    used.period,
    used.period_grain,
    used.side,
    used.source_file,
    files.source,
    files.raw_table,
    files.url,
    files.data_origin,
    files.constructed,
    files.vintage,
    files.fetched_at
from used
left join files on files.source_file = used.source_file
