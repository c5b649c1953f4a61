-- Section 5 per-event microdata, one row per repatriation event, as the newest file of the
-- year published it (one CSV per year, re-published with the year to date; an event has no id
-- that survives between files, so a year is taken whole from one file).

with newest as (

    select * from {{ rows_of_newest_file(source('raw', 'segob_repatriation_events'), 'year(repatriation_date)') }}

),

renamed as (

    select
        cast(repatriation_date as date) as repatriation_date,
        cast(date_trunc('month', repatriation_date) as date) as month,
        sex_code,
        cast(age as integer) as age,
        travel_condition_code,
        detention_state,
        repatriation_point,
        source_file,
        source_row,
        vintage,
        first_published_vintage,
        vintages_with_period as vintages_with_year
    from newest

)

select * from renamed
